"""What a user-facing command prints: bakeoff's lines and progress bars, not TensorFlow's.

TensorFlow's C++ runtime writes some lines straight to file descriptor 2 before its
logging is initialised, so `TF_CPP_MIN_LOG_LEVEL` does not hide them
(tensorflow/tensorflow#100442): "oneDNN custom operations are on" at import and, while
training, "NodeDef mentions attribute use_unbounded_threadpool" errors that are harmless
(a tf.data attribute newer than the op registry). Nobody can act on them, and they bury the
progress bars. `filtered_stderr` drops exactly those lines at the file-descriptor level;
every other line, TensorFlow's real errors included, passes through unchanged.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# How bakeoff's processes (the CLI and the Prefect flows) run TensorFlow, set before it
# starts; a user's own values win. TF_CPP_MIN_LOG_LEVEL: the C++ start-up chatter would bury
# the progress bars and results. TF_NUM_INTEROP_THREADS: ops run one after another, each
# still using every core inside it (the intra-op pool): the many small ops of a head fit
# and of a batch-1 latency call do not compete with each other for the few cores, which
# saves CPU and lowers batch-1 latency; large batched forward passes are unaffected.
TENSORFLOW_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_NUM_INTEROP_THREADS": "1"}


def set_tensorflow_env() -> None:
    """`TENSORFLOW_ENV` into os.environ, where not set already (before TensorFlow starts)."""
    for key, value in TENSORFLOW_ENV.items():
        os.environ.setdefault(key, value)


_NOISE = re.compile(
    rb"^\r?(WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|[IWE]\d{4} [\d:. ]+\d+ \S+:\d+\] (oneDNN custom operations are on"
    rb"|.*NodeDef mentions attribute use_unbounded_threadpool))"
)
# What the start of such a line looks like: a partial segment that could still become one
# is held back until its end arrives; anything else (a progress bar) is written at once.
_NOISE_START = re.compile(rb"^\r?(W(A(R(N(I(N(G(:.*)?)?)?)?)?)?)?|[IWE]\d{0,4}( [\d:. ]*)?)$")


def _pump(read_fd: int, out_fd: int) -> None:
    """Copy read_fd to out_fd segment by segment (a segment ends in \\n or \\r), minus noise."""
    pending = b""
    while chunk := os.read(read_fd, 65536):
        pending += chunk
        segments = re.split(rb"(?<=[\n\r])", pending)
        pending = segments.pop()  # the unterminated rest ("" when the chunk ended a segment)
        if pending and not _NOISE_START.match(pending):
            segments.append(pending)
            pending = b""
        out = b"".join(s for s in segments if not _NOISE.match(s))
        if out:
            os.write(out_fd, out)
    if pending and not _NOISE.match(pending):
        os.write(out_fd, pending)
    os.close(read_fd)


def keras_verbose() -> int:
    """Keras `fit(verbose=...)`: progress bars (1) on a terminal; one line per epoch (2) when
    stdout is a file or a pipe (`dvc repro > log`, a Prefect task, CI), where every
    redrawn bar would become a line of its own."""
    return 1 if sys.stdout.isatty() else 2


@contextmanager
def filtered_stderr() -> Iterator[None]:
    """Inside the block, file descriptor 2 goes through a filter that drops TensorFlow's
    unactionable start-up and tf.data lines (see the module docstring)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        read_fd, write_fd = os.pipe()
    except OSError:  # no file descriptors to spare, or none at all: print unfiltered
        yield
        return
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump = threading.Thread(target=_pump, args=(read_fd, saved), daemon=True)
    pump.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end here: the pump sees EOF
        # A child process still holding the pipe (it outlived us) delays EOF: wait a while.
        pump.join(timeout=5)
        os.close(saved)
