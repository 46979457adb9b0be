"""`bakeoff.stack` refuses what would fail later, with a message that says what to change
(the stack itself runs in tests/code/test_scale_out.py)."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path

import pytest

from bakeoff.errors import BakeoffError
from bakeoff.stack import __main__ as stack
from bakeoff.stack.postgres import Cluster


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the cluster to `postgres`")
def test_a_cluster_postgres_cannot_reach_is_an_error_naming_the_folder():
    with tempfile.TemporaryDirectory() as private:  # mode 0700, owned by root
        with pytest.raises(BakeoffError, match=f"{private} is not searchable by others"):
            Cluster(Path(private) / "pg", 5432).init()
        assert not (Path(private) / "pg" / "data").exists()


def test_up_refuses_a_busy_port_and_says_how_to_pick_others(tmp_path):
    """Also: the state of a stack that no longer runs (a reboot) does not block `up`."""
    state_dir = tmp_path / ".stack"
    state_dir.mkdir()
    gone = {"pids": {"mlflow": 2**22 + 1}, "cmds": {"mlflow": ["mlflow", "server"]}}
    (state_dir / "stack.json").write_text(json.dumps(gone))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = dict(stack.PORTS, mlflow=port)
        (state_dir / "ports.json").write_text(json.dumps(ports))
        with pytest.raises(BakeoffError, match=rf"mlflow {port}.*--free-ports"):
            stack.up(state_dir)
    assert not (state_dir / "pg").exists(), "PostgreSQL was set up anyway"


def test_status_and_down_without_a_stack_say_so(tmp_path, capsys):
    assert stack.main(["status", "--dir", str(tmp_path)]) == 1
    assert stack.main(["down", "--dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.count(f"no stack runs from {tmp_path}") == 2


def test_local_servers_are_asked_directly_whatever_the_proxy(monkeypatch):
    """A user's HTTP_PROXY (without NO_PROXY) must not hide bakeoff's own 127.0.0.1 servers,
    even after urllib's global opener was built with that proxy."""
    import http.server
    import threading
    import urllib.request

    from bakeoff.stack import procs

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    for var in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{closed}")
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    urllib.request.install_opener(None)  # built anew, from this environment
    try:
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=2)  # through the proxy: refused
        assert procs.http_ok(url)
    finally:
        urllib.request.install_opener(None)
        server.shutdown()
