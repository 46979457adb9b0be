"""The project's exception, and which other failures are worth retrying."""

from __future__ import annotations

import errno

# OSError codes that mean "try again": a busy or locked resource, an interrupted call, a
# network that dropped or refused for a moment. Anything else (ENOENT, EACCES, ENOSPC...)
# fails the same way the next time.
_TRANSIENT_ERRNOS = {
    errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT, errno.ECONNRESET,
    errno.ECONNREFUSED, errno.ECONNABORTED, errno.EPIPE, errno.ENETUNREACH,
    errno.ENETDOWN, errno.EHOSTUNREACH,
}  # fmt: skip
# Exception class names of HTTP clients (requests, urllib3, httpx) for a dropped connection
# or a timeout; matched by name so this module imports none of them.
_TRANSIENT_NAMES = {
    "ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout", "TimeoutException",
    "ConnectError", "ReadError", "RemoteProtocolError", "ProtocolError",
    "NewConnectionError", "MaxRetryError",
}  # fmt: skip
_TRANSIENT_MESSAGES = ("database is locked", "database table is locked")


class BakeoffError(Exception):
    """A problem with the user's input (params, images, weights) that they can fix.

    The message says what to change; the CLI prints it on one line and exits 1.
    """


class TransientError(RuntimeError):
    """A failure that may pass when tried again (e.g. a training process killed by a signal:
    a retry resumes it from its last completed epoch)."""


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` (or an exception it was raised from) may succeed if tried again.

    Transient: connection errors and timeouts, a locked sqlite database, OSErrors with an
    EAGAIN-like code. Never a BakeoffError, nor a programming error (TypeError, KeyError...).
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, BakeoffError):
            return False
        if isinstance(exc, TransientError | ConnectionError | TimeoutError):
            return True
        if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
            return True
        if any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__):
            return True
        if any(text in str(exc).lower() for text in _TRANSIENT_MESSAGES):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
