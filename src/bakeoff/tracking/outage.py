"""Absent, broken or away: how every call to MLflow tells them apart, and the outage window.

- **Absent**: MLflow's `RESOURCE_DOES_NOT_EXIST` (a run, model, version or alias that is not
  there). Only that means "none": `read` returns None for it.
- **Refused**: a request MLflow will refuse again (`INVALID_PARAMETER_VALUE`, permission...),
  a BakeoffError, or an error that is not about the server (a bug, a full disk): raised at once.
- **Away**: anything else (connection refused or reset, a timeout, a 5xx, a locked sqlite
  store): the server is treated as away. The call is tried again with backoff until the
  outage (counted from the first failed call, across calls and threads) has lasted
  `tracking.outage_timeout`; then `TrackingUnavailable` says which server and for how long.

MLflow retries each HTTP request itself (`MLFLOW_HTTP_REQUEST_MAX_RETRIES`, 7 by default:
about 4 minutes against a stopped server). `limit_http_retries` shortens that to a few
seconds unless the user set those variables, so the window is `outage_timeout`, plus at most
one request's own retries.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from bakeoff.errors import BakeoffError, is_transient

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_TIMEOUT = 900.0  # seconds: tracking.outage_timeout's default
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds between attempts; the last one repeats
# MLflow error codes that a retry cannot change (a bad request, no permission, a clash).
_REFUSED = {
    "INVALID_PARAMETER_VALUE", "BAD_REQUEST", "INVALID_STATE", "RESOURCE_ALREADY_EXISTS",
    "PERMISSION_DENIED", "UNAUTHENTICATED", "CUSTOMER_UNAUTHORIZED", "ENDPOINT_NOT_FOUND",
    "NOT_IMPLEMENTED", "MALFORMED_REQUEST", "INVALID_REQUEST",
}  # fmt: skip
# A stopped server answers in seconds, not minutes: MLflow's own retries (connect and 5xx)
# stay short so that bakeoff's window, not their product, decides how long to wait.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}


class TrackingUnavailable(BakeoffError):
    """The tracking server stayed away longer than `tracking.outage_timeout`."""


class _Outage:
    """When the current outage began (None: the last call succeeded); shared by threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.since: float | None = None
        self.timeout = DEFAULT_TIMEOUT
        self.server: Callable[[], str] | None = None  # the tracking URI in force

    def failed(self) -> float:
        """Record a failed call; returns how long the outage has lasted (seconds)."""
        with self.lock:
            now = time.monotonic()
            if self.since is None:
                self.since = now
            return now - self.since

    def passed(self) -> None:
        with self.lock:
            self.since = None


OUTAGE = _Outage()


def backoff(attempt: int) -> float:
    """Seconds to wait before trying again after `attempt` (0-based) failed attempts in a row:
    `BACKOFF`, its last wait repeated. Every retry of a call to MLflow waits by this."""
    return BACKOFF[min(attempt, len(BACKOFF) - 1)]


def set_timeout(seconds: float) -> None:
    """Set the outage window (`tracking.outage_timeout`), in seconds."""
    OUTAGE.timeout = float(seconds)


def limit_http_retries() -> None:
    """Shorten MLflow's per-request retries (see the module docstring), unless the user set
    them: their setting wins, and then the window grows by one request's retries."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)


def error_code(exc: BaseException) -> str | None:
    """MLflow's error code of `exc` (e.g. `RESOURCE_DOES_NOT_EXIST`), else None."""
    from mlflow.exceptions import MlflowException

    return exc.error_code if isinstance(exc, MlflowException) else None


def is_absent(exc: BaseException) -> bool:
    """Whether `exc` is MLflow saying the thing asked for does not exist."""
    return error_code(exc) == "RESOURCE_DOES_NOT_EXIST"


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says the server is away (worth waiting for), not that it refused.

    Away: an MlflowException other than a refusal or absence (MLflow wraps a refused
    connection, a timeout and a 5xx in one), or a connection error, timeout or locked store
    (`errors.is_transient`). Anything else (a bug, a full disk) is raised at once.
    """
    from mlflow.exceptions import MlflowException

    if isinstance(exc, BakeoffError) or is_absent(exc):
        return False
    if isinstance(exc, MlflowException):
        return exc.error_code not in _REFUSED
    return is_transient(exc)


def set_server(uri: Callable[[], str]) -> None:
    """How to name the tracking server in messages (`store.configure` passes its URI)."""
    OUTAGE.server = uri


def server() -> str:
    """The tracking URI in force, to name in messages."""
    # Given by `store.configure` rather than imported: store calls this module.
    if OUTAGE.server is not None:
        try:
            return OUTAGE.server()
        except BakeoffError:
            pass  # falls through to what the environment names
    return os.environ.get("MLFLOW_TRACKING_URI", "(MLflow not configured)")


def unavailable(what: str, exc: BaseException, waited: float) -> TrackingUnavailable:
    """The one-line error for an outage longer than the window."""
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return TrackingUnavailable(
        f"MLflow tracking server {server()} unavailable for {waited:.0f} s "
        f"(tracking.outage_timeout={OUTAGE.timeout:g} s) while trying to {what}: {first}"
    )


def call(
    fn: Callable[[], T], what: str, *, absent_ok: bool = False, absent_text: str | None = None
) -> T | None:
    """`fn()`, tried again while the server is away, within the outage window.

    Args:
        fn: The MLflow call.
        what: What it does, for messages ("read the champion of image-classifier").
        absent_ok: Return None when MLflow answers RESOURCE_DOES_NOT_EXIST (a read);
            otherwise that error is raised like any refusal.
        absent_text: With `absent_ok`, an INVALID_PARAMETER_VALUE whose message holds
            this text means absent too (MLflow's stores answer a missing alias that way).

    Raises:
        TrackingUnavailable: The outage outlasted `tracking.outage_timeout`.
        Exception: Anything that is not an outage (see `is_outage`), as raised.
    """
    attempt = 0
    while True:
        try:
            result = fn()
        except Exception as exc:
            if absent_ok and (is_absent(exc) or _says(exc, absent_text)):
                OUTAGE.passed()
                return None
            if not is_outage(exc):
                raise
            waited = OUTAGE.failed()
            if waited >= OUTAGE.timeout:
                OUTAGE.passed()  # the next stage in this process gets a window of its own
                raise unavailable(what, exc, waited) from exc
            delay = min(backoff(attempt), OUTAGE.timeout - waited)
            log.warning("could not %s on %s (%s); retrying in %.0f s", what, server(), exc, delay)
            time.sleep(delay)
            attempt += 1
            continue
        OUTAGE.passed()
        return result


def read(fn: Callable[[], T], what: str, absent_text: str | None = None) -> T | None:
    """A read: None only when MLflow says the thing does not exist (see `call`)."""
    return call(fn, what, absent_ok=True, absent_text=absent_text)


def _says(exc: BaseException, text: str | None) -> bool:
    return text is not None and error_code(exc) == "INVALID_PARAMETER_VALUE" and text in str(exc)
