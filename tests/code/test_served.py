"""The served model's input handling: base64 files of any format and size, pixels, bad rows."""

from __future__ import annotations

import base64
import io

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bakeoff.data.images import load_array
from bakeoff.tracking.served import BadInput, ImageClassifier
from tests.data.imagegen import png_header_only

CLASSES = ["dark", "bright"]


def encoded(img: Image.Image, fmt: str) -> str:
    buffer = io.BytesIO()
    img.save(buffer, fmt)
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def classifier():
    """Mean brightness decides: a fixed two-class model on 16 px inputs."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    dense = keras.layers.Dense(2, activation="softmax")
    outputs = dense(x)
    dense.set_weights([np.array([[-4.0, 4.0]] * 3) / 3, np.array([2.0, -2.0])])
    return ImageClassifier(keras.Model(inputs, outputs), CLASSES)


def test_any_format_and_size_is_decoded_like_training(classifier, tmp_path):
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (40, 25, 3), dtype=np.uint8))
    grey = Image.fromarray(np.full((70, 70), 240, np.uint8), "L")
    rows = pd.DataFrame({"image": [encoded(photo, "PNG"), encoded(photo, "JPEG"),
                                   encoded(grey, "GIF"), encoded(grey, "BMP")]})  # fmt: skip
    x = classifier.pixels(rows)
    assert x.shape == (4, 16, 16, 3) and x.dtype == np.float32
    photo.save(tmp_path / "photo.png")
    np.testing.assert_array_equal(x[0], load_array(tmp_path / "photo.png", 16))
    out = classifier.predict(rows)
    assert [r["label"] for r in out[2:]] == ["bright", "bright"]
    assert all(set(r["probabilities"]) == set(CLASSES) for r in out)
    assert all(sum(r["probabilities"].values()) == pytest.approx(1.0) for r in out)


def test_pixels_and_the_inputs_form_work_too(classifier):
    dark = np.full((16, 16, 3), 10).tolist()
    bright_big = np.full((50, 30, 3), 250).tolist()  # resized to the model's size
    out = classifier.predict(pd.DataFrame({"pixels": [dark, bright_big]}))
    assert [r["label"] for r in out] == ["dark", "bright"]
    white = encoded(Image.new("RGB", (8, 8), "white"), "PNG")
    assert classifier.predict({"image": np.array([white])})[0]["label"] == "bright"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_each_bad_row_is_named_with_its_reason(classifier):
    from mlflow.exceptions import MlflowException

    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    good = encoded(Image.fromarray(noise), "PNG")
    truncated = base64.b64decode(good)[:2000]
    rows = pd.DataFrame(
        {
            "image": [
                good,
                "this is not base64!",
                base64.b64encode(b"plain text, not an image").decode(),
                base64.b64encode(truncated).decode(),
                base64.b64encode(png_header_only(20_000, 20_000)).decode(),  # PIL refuses
                base64.b64encode(png_header_only(10_000, 10_000)).decode(),  # PIL only warns
            ]
        }
    )
    with pytest.raises(BadInput) as err:
        classifier.pixels(rows)
    message = str(err.value)
    assert "row 0" not in message
    assert "row 1: 'image' is not valid base64" in message
    assert "row 2: not an image file" in message
    assert "row 3: cannot decode the image" in message
    assert "row 4: decompression bomb refused" in message
    assert "row 5: decompression bomb refused: 10000x10000 pixels" in message
    with pytest.raises(MlflowException) as served:
        classifier.predict(rows)
    assert served.value.get_http_status_code() == 400
    assert "row 1:" in served.value.message


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (pd.DataFrame({"pixels": [np.zeros((4, 4)).tolist()]}), r"row 0: 'pixels' must be"),
        (pd.DataFrame({"image": [None]}), "row 0: neither 'image' nor 'pixels'"),
        (pd.DataFrame({"text": ["hi"]}), "expected rows with an 'image'"),
        (pd.DataFrame({"image": [7]}), "row 0: 'image' must be a base64 string"),
    ],
)
def test_malformed_rows_are_rejected(classifier, rows, match):
    with pytest.raises(BadInput, match=match):
        classifier.pixels(rows)


def test_concurrent_requests_share_model_calls_and_get_their_own_rows():
    """The served model runs in MLflow's threads: requests that arrive while the model is
    busy go into one call, and each gets back exactly its own rows."""
    import threading
    import time

    from bakeoff.tracking.served import Batcher

    calls = []

    def slow_model(x):
        calls.append(len(x))
        time.sleep(0.05)
        return x[:, :1] * 10  # row i's answer carries row i's value

    batcher = Batcher(slow_model, max_batch=64)
    results = {}

    def request(i):
        results[i] = batcher(np.full((3, 2), float(i)))

    threads = [threading.Thread(target=request, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == list(range(12))
    for i, out in results.items():
        np.testing.assert_array_equal(out, np.full((3, 1), 10.0 * i))
    assert sum(calls) == 36 and len(calls) < 12, calls  # batched, nothing lost or doubled
    assert max(calls) <= 64

    def broken(x):
        raise RuntimeError("model exploded")

    with pytest.raises(RuntimeError, match="model exploded"):
        Batcher(broken)(np.zeros((1, 2)))
