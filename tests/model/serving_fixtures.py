"""A real `mlflow models serve` of a registered model, and requests in the served format.

The server runs in a Python that cannot import bakeoff (the model ships its own serving
code), on a free 127.0.0.1 port, and is stopped when the block ends.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bakeoff.stack import procs
from tests.conftest import benchmark_module, no_bakeoff_env


@contextmanager
def served(model_uri: str, store: str, folder: Path, **env: str) -> Iterator[tuple]:
    """`mlflow models serve -m model_uri --env-manager local` over the MLflow `store`.

    Args:
        model_uri: The model to serve (e.g. `models:/<name>@champion`).
        store: The tracking URI where `model_uri` is registered.
        folder: Where the server runs and writes its log.
        **env: More environment variables for the server.

    Yields:
        (port, pid of the serving process, its log file path).
    """
    environ = {**no_bakeoff_env(folder / "no_bakeoff", store), **env}
    with benchmark_module("_support").serve(model_uri, environ, folder) as running:
        yield running


def b64(data: bytes) -> str:
    """A file's bytes as the served `image` column wants them."""
    return base64.b64encode(data).decode()


def image_rows(files: list[Path]) -> dict:
    """The request body for image files, as docs/serving.md gives it."""
    return {"dataframe_records": [{"image": b64(Path(f).read_bytes())} for f in files]}


def post(port: int, payload: dict) -> tuple[int, dict]:
    """POST `payload` to the server's /invocations; (HTTP status, decoded JSON body)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with procs.open_local(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())
