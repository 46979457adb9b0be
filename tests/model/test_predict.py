"""`bakeoff predict` on a registered champion: top-k labels, folders, bad files, JSON."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from typer.testing import CliRunner

from bakeoff.errors import BakeoffError
from tests.conftest import REPO, run_sections
from tests.model.tiny_models import shared_project


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """The shared StripeNet registered as champion under params.yaml's model name."""
    from bakeoff.register.stage import register

    with pytest.MonkeyPatch.context() as mp:
        root, params, raw, split = shared_project(tmp_path_factory, mp)
        out = root / "reports" / "register_predict.json"
        decision = register(params.register, ["StripeNet"], root / "models", root / "metrics",
                            split, raw, out, seed=params.seed, bootstrap=params.bootstrap,
                            budgets=params.budgets, tracking_params=params.tracking,
                            cache_dir=root / "cache", root=root)  # fmt: skip
        assert decision.report["decision"] in ("promoted", "rejected")  # rejected: already champion
        real = dataclasses.replace(
            params, register=dataclasses.replace(params.register, model_name="real-train")
        )
        register(real.register, ["SimpleCNN"], root / "models", root / "metrics", split, raw,
                 out, seed=real.seed, bootstrap=real.bootstrap, budgets=real.budgets,
                 tracking_params=real.tracking, cache_dir=root / "cache", root=root)  # fmt: skip
        yield root, params, raw


def test_top_k_labels_for_files_and_folders(champion, tmp_path):
    from bakeoff.predict import predict

    root, params, raw = champion
    folder = tmp_path / "photos"
    shutil.copytree(raw / "vertical", folder / "nested")
    shutil.copy(raw / "horizontal" / "horizontal_000.png", folder / "h.png")
    shutil.copy(raw / "dots" / "dots_000.png", folder / ".hidden.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")

    results = predict([folder, raw / "dots" / "dots_001.png"], params, top_k=2, root=root)
    by_name = {r.path.rsplit("/", 1)[-1]: r for r in results}
    assert len(results) == 12 + 3  # 12 vertical, h.png, broken.png, the file given
    assert ".hidden.png" not in by_name and "notes.txt" not in by_name
    assert "cannot read image" in by_name["broken.png"].error
    assert by_name["h.png"].labels[0] == "horizontal"
    assert by_name["dots_001.png"].labels[0] == "dots"
    ok = [r for r in results if r.error is None]
    assert all(len(r.labels) == 2 and r.probabilities[0] >= r.probabilities[1] for r in ok)
    assert sum(r.labels[0] == "vertical" for r in ok) >= 10


def test_cli_prints_json(champion, monkeypatch):
    from bakeoff.cli import app

    root, _, raw = champion
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    monkeypatch.chdir(root)  # the project the CLI runs in: its store is root/mlruns
    result = CliRunner().invoke(app, ["predict", str(raw / "horizontal"), "--json", "-k", "3"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 12
    assert set(rows[0]["labels"]) == {"dots", "horizontal", "vertical"}
    assert sum(r["labels"][0] == "horizontal" for r in rows) >= 10
    assert sum(rows[0]["probabilities"]) == pytest.approx(1.0, abs=1e-3)


def test_no_champion_says_how_to_get_one(champion):
    from bakeoff.predict import predict

    root, params, raw = champion
    params = dataclasses.replace(
        params, register=dataclasses.replace(params.register, model_name="never-registered")
    )
    with pytest.raises(BakeoffError, match="dvc repro"):
        predict([raw / "dots"], params, root=root)
    with pytest.raises(BakeoffError, match="no such file"):
        predict([raw / "missing.png"], params, root=root)


def test_a_model_bakeoff_trained_beats_chance_through_evaluate_and_predict(champion):
    """End to end on bakeoff's own output: train() -> evaluate() -> register() -> predict()
    through the registry, not a hand-made model. Chance is 1/3."""
    from bakeoff.predict import predict

    root, params, raw = champion
    metrics = json.loads((root / "metrics" / "SimpleCNN.json").read_text())
    assert metrics["test_accuracy"] >= 7 / 9  # 9 test images: p = 0.008 by chance
    results = predict([raw], params, top_k=1, model_uri="models:/real-train@champion", root=root)
    assert len(results) == 36 and all(r.error is None for r in results)
    correct = sum(r.labels[0] == r.path.split("/")[-2] for r in results)
    assert correct >= 30, f"{correct} of 36 right"


@pytest.mark.parametrize("classes", [None, ["dots", "horizontal"]])
def test_a_model_without_matching_class_names_is_an_error(champion, classes):
    """No made-up `class_0` labels: a model whose metadata lacks the names (or has too few)
    cannot say what it predicts. (bakeoff always logs them: such a model comes from
    elsewhere, logged here with MLflow's own Keras flavour.)"""
    import keras
    import mlflow

    from bakeoff import tracking
    from bakeoff.predict import predict

    root, params, raw = champion
    model = keras.saving.load_model(root / "models" / "StripeNet" / "model.keras")
    with (
        tracking.training_run(run_sections(params), "StripeNet", None, {}, root) as run_id,
        mlflow.start_run(run_id=run_id),  # training_run uses the client, not the fluent API
    ):
        metadata = {"classes": classes} if classes else None
        info = mlflow.keras.log_model(model, name="foreign", metadata=metadata)
    assert info.run_id == run_id
    found = "no class names" if classes is None else "2 class names"
    with pytest.raises(BakeoffError, match=f"has 3 outputs but {found}"):
        predict([raw / "dots"], params, model_uri=info.model_uri, root=root)
