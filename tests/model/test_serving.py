"""The registered champion serves with MLflow alone: real `mlflow models serve`, real HTTP,
in processes that cannot import bakeoff."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from tests.conftest import CLASSES, no_bakeoff_env
from tests.data.imagegen import png_header_only
from tests.model.serving_fixtures import b64, image_rows, post, served
from tests.model.tiny_models import project_store, register_champion, shared_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        yield shared_project(tmp_path_factory, mp)


@pytest.fixture(scope="module")
def server(project, tmp_path_factory):
    """`mlflow models serve` of the champion of a real (shrunk) SimpleCNN training run."""
    uri = register_champion(project, "SimpleCNN", "served")
    with served(uri, project_store(project), tmp_path_factory.mktemp("serve")) as (port, _, log):
        yield port, uri, log


@pytest.mark.services
def test_served_champion_answers_image_files_like_bakeoff_predict(server, project, tmp_path):
    from bakeoff.predict import predict

    port, uri, _ = server
    root, params, raw, _ = project
    png = raw / "horizontal" / "horizontal_011.png"
    jpeg = tmp_path / "vertical.jpg"  # another format and size: decoded and resized alike
    Image.open(raw / "vertical" / "vertical_011.png").resize((45, 40)).save(jpeg, quality=95)
    status, body = post(port, image_rows([png, jpeg]))
    assert status == 200, body
    rows = body["predictions"]
    expected = predict([png, jpeg], params, top_k=len(CLASSES), model_uri=uri, root=root)
    for row, local in zip(rows, expected, strict=True):
        assert set(row["probabilities"]) == set(CLASSES)
        assert row["label"] == local.labels[0]
        assert max(row["probabilities"], key=row["probabilities"].get) == row["label"]
        for label, p in zip(local.labels, local.probabilities, strict=True):
            assert row["probabilities"][label] == pytest.approx(p, abs=2e-6)


@pytest.mark.services
def test_bad_payloads_get_400_naming_the_row_and_the_server_stays_up(server, project):
    port, _, log = server
    _, _, raw, _ = project
    good = b64((raw / "dots" / "dots_000.png").read_bytes())
    cases = {
        "not base64": ("%%% not base64 %%%", "is not valid base64"),
        "not an image": (b64(b"GIF89a? no, plain text"), "not an image file"),
        "bomb": (b64(png_header_only(30_000, 30_000)), "decompression bomb refused"),
    }
    for value, message in cases.values():
        status, body = post(port, {"dataframe_records": [{"image": good}, {"image": value}]})
        assert status == 400, body
        assert body["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "row 1: " in body["message"] and message in body["message"]
        assert "row 0" not in body["message"].split("Error:")[-1]
    status, body = post(port, {"dataframe_records": [{"image": good}]})
    assert status == 200 and body["predictions"][0]["label"] in CLASSES
    assert "Traceback" not in log.read_text()


def test_pyfunc_and_keras_flavours_load_without_bakeoff(project, tmp_path):
    """StripeNet (learnt the stripes) as a champion, loaded where bakeoff cannot be imported."""
    uri = register_champion(project, "StripeNet", "served-stripes")
    _, _, raw, split = project
    files = [raw / r.split(",")[0] for r in (split / "test.csv").read_text().splitlines()[1:]]
    truth = [f.parent.name for f in files]
    script = """
import base64, json, sys
import mlflow, numpy as np, pandas as pd
from PIL import Image
uri, files = sys.argv[1], sys.argv[2:]
served = mlflow.pyfunc.load_model(uri).predict(
    pd.DataFrame({"image": [base64.b64encode(open(f, "rb").read()).decode() for f in files]}))
pixels = [np.asarray(Image.open(f).convert("RGB")).tolist() for f in files]
as_pixels = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"pixels": pixels}))
keras_proba = mlflow.keras.load_model(uri).predict(np.asarray(pixels, "float32"), verbose=0)
print(json.dumps({"served": served, "as_pixels": as_pixels, "keras": keras_proba.tolist()}))
"""
    env = no_bakeoff_env(tmp_path / "no_bakeoff")
    env["MLFLOW_TRACKING_URI"] = project_store(project)
    done = subprocess.run([sys.executable, "-c", script, uri, *map(str, files)], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    labels = [row["label"] for row in out["served"]]
    assert sum(a == b for a, b in zip(labels, truth, strict=True)) >= len(truth) - 1
    assert [row["label"] for row in out["as_pixels"]] == labels
    for row, keras_row in zip(out["served"], out["keras"], strict=True):
        probs = [row["probabilities"][c] for c in CLASSES]
        assert probs == pytest.approx(keras_row, abs=1e-6)
