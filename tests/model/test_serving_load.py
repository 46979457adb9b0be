"""The served champion under concurrent load: `benchmarks/serve_load.py`'s server and
clients, bounded to seconds. No 5xx, a 4xx for every garbage request, the right labels,
and memory that does not grow."""

from __future__ import annotations

import base64
import json

import pytest

from tests.conftest import benchmark_module
from tests.model.tiny_models import project_store, register_champion, shared_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        yield shared_project(tmp_path_factory, mp)


@pytest.mark.services
def test_served_champion_holds_concurrent_load_with_garbage(project, tmp_path):
    from bakeoff.predict import predict

    bench = benchmark_module("serve_load")
    uri = register_champion(project, "StripeNet", "served-load")
    root, params, raw, split = project
    files = [raw / r.split(",")[0] for r in (split / "test.csv").read_text().splitlines()[1:]]
    expected = [r.labels[0] for r in predict(files, params, model_uri=uri, root=root)]
    truth = [f.parent.name for f in files]
    assert sum(a == b for a, b in zip(expected, truth, strict=True)) >= len(files) - 1
    images = [base64.b64encode(f.read_bytes()).decode() for f in files]
    bodies = []
    for i in range(40):  # 4 images each; every 20th request has a garbage row
        idx = [(4 * i + k) % len(files) for k in range(4)]
        rows = [{"image": images[j]} for j in idx]
        labels = [expected[j] for j in idx]
        if i % bench.GARBAGE_EVERY == bench.GARBAGE_EVERY - 1:
            rows[i % 4], labels = {"image": "not base64 %%%"}, None
        bodies.append((json.dumps({"dataframe_records": rows}).encode(), labels))

    env = bench.no_bakeoff_env(tmp_path / "no_bakeoff", project_store(project))
    with bench.serve(uri, env, tmp_path) as (port, pid, log):
        bench.run_clients(port, bodies[:4], 2, 1.0)  # warm-up: imports, first calls
        rss_start = bench.rss_mb(pid)
        replies = bench.run_clients(port, bodies, clients=8, seconds=8.0)
        rss_end = bench.rss_mb(pid)
    figures = bench.summary(replies, 8.0)
    assert figures["requests"] >= 40, figures  # every body went through at least once
    assert figures["5xx"] == 0, figures
    assert figures["garbage"] >= 2 and figures["garbage_4xx"] == figures["garbage"], figures
    assert figures["good_not_200"] == 0 and figures["wrong_labels"] == 0, figures
    assert rss_end <= 1.25 * rss_start, f"server RSS grew {rss_start:.0f} -> {rss_end:.0f} MB"
    assert "Traceback" not in log.read_text().split("Uvicorn running")[-1]
