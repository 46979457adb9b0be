"""Reading images and manifests: the guards every stage shares (train, evaluate, predict)."""

from __future__ import annotations

import pytest
from PIL import Image

from bakeoff.data.dataset import manifest_file
from bakeoff.data.images import DecompressionBomb, load_array
from bakeoff.data.pixels import split_pixels
from bakeoff.errors import BakeoffError
from tests.conftest import make_image_folder, write_split


@pytest.mark.parametrize(
    "limit", [100, 600]
)  # 32x32 = 1024 px: over 2x limit, PIL raises; under, it only warns
def test_a_decompression_bomb_is_an_error_when_loading_for_training(tmp_path, monkeypatch, limit):
    raw = make_image_folder(tmp_path / "raw", per_class=4)
    split = write_split(raw, tmp_path / "split")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(DecompressionBomb, match="decompression") as err:
        load_array(raw / "dots" / "dots_000.png", 16)
    assert isinstance(err.value, Image.DecompressionBombError)
    with pytest.raises(BakeoffError, match="DecompressionBomb"):  # train's decode cache
        split_pixels(split, "train", raw, 16, tmp_path / "cache")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 32 * 32)  # at the limit: fine
    assert load_array(raw / "dots" / "dots_000.png", 16).shape == (16, 16, 3)


@pytest.mark.parametrize("relative", ["../outside.png", "/etc/passwd", "dots/../../x.png", "."])
def test_manifest_paths_must_stay_under_the_image_root(tmp_path, relative):
    with pytest.raises(BakeoffError, match="outside the image folder"):
        manifest_file(tmp_path / "raw", relative, "train.csv")


def test_a_manifest_row_pointing_outside_fails_before_decoding(tmp_path):
    raw = make_image_folder(tmp_path / "raw", per_class=4)
    split = write_split(raw, tmp_path / "split")
    (tmp_path / "secret.png").write_bytes((raw / "dots" / "dots_000.png").read_bytes())
    rows = (split / "train.csv").read_text().splitlines()
    rows[1] = "../secret.png," + rows[1].split(",", 1)[1]
    (split / "train.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(BakeoffError, match=r"train\.csv names '../secret.png'"):
        split_pixels(split, "train", raw, 16, tmp_path / "cache")
    assert manifest_file(raw, "dots/dots_000.png", "train.csv") == raw / "dots" / "dots_000.png"
