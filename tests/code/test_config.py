"""params.yaml is strict: typos and wrong types are errors that name the key."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from bakeoff.config.params import Params, load_params, parse_params
from bakeoff.errors import BakeoffError
from tests.conftest import REPO


def _raw() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_project_params_load():
    params = load_params(REPO / "params.yaml")
    assert params.backbones
    assert params.train.weights == "none"


def test_unknown_key_is_named():
    raw = _raw()
    raw["train"]["epochz"] = 3
    with pytest.raises(BakeoffError, match=r"unknown key 'train\.epochz'"):
        parse_params(raw)


def test_wrong_type_is_named():
    raw = _raw()
    raw["split"]["val"] = "a lot"
    raw["train"]["batch_size"] = "32"  # a string is not silently coerced
    with pytest.raises(BakeoffError) as err:
        parse_params(raw)
    assert "'split.val'" in str(err.value) and "'train.batch_size'" in str(err.value)


def test_unknown_top_level_section():
    raw = _raw()
    raw["trian"] = {"epochs": 1}
    with pytest.raises(BakeoffError, match="unknown key 'trian'"):
        parse_params(raw)


def test_per_backbone_override_applies_to_that_backbone_only():
    raw = _raw()
    raw["train"]["overrides"]["VGG16"] = {"batch_size": 8, "learning_rate": 0.01}
    params = parse_params(raw)
    assert params.for_backbone("VGG16").batch_size == 8
    assert params.for_backbone("VGG16").learning_rate == 0.01
    assert params.for_backbone("MobileNet").batch_size == raw["train"]["batch_size"]
    # A backbone's recipe (train.json records it) holds its own override entry only.
    assert list(params.for_backbone("VGG16").overrides) == ["VGG16"]
    mobilenet = params.train.overrides["MobileNet"]
    assert params.for_backbone("MobileNet").overrides == {"MobileNet": mobilenet}


def test_a_backbone_without_its_override_entry_is_an_error_saying_what_to_add():
    """dvc.yaml's train@<b> depends on `train.overrides.<b>`, which DVC refuses when absent:
    the loader says so at once, not `dvc repro` halfway."""
    raw = _raw()
    del raw["train"]["overrides"]["MobileNet"], raw["train"]["overrides"]["SimpleCNN"]
    with pytest.raises(BakeoffError, match=r"train\.overrides has no entry for SimpleCNN, "
                       r"MobileNet: add `SimpleCNN: \{\}`, `MobileNet: \{\}`"):  # fmt: skip
        parse_params(raw)
    raw["backbones"] = ["MobileNetV2", "VGG16"]  # the others need none
    assert parse_params(raw).backbones == ["MobileNetV2", "VGG16"]


def test_params_are_frozen():
    params = load_params(REPO / "params.yaml")
    with pytest.raises(AttributeError):
        params.train.epochs = 99  # type: ignore[misc]


def test_missing_params_file_is_clear(tmp_path):
    with pytest.raises(BakeoffError, match="no params file"):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["train"]["overrides"].update(VGG61={"epochs": 3}),
         r"'train\.overrides': unknown backbone 'VGG61': choose from .*VGG16"),
        (lambda r: r.update(backbones=["SimpleCNN", "ResNet9000"]),
         r"'backbones': unknown backbone 'ResNet9000'"),
        (lambda r: r.update(backbones=[]), r"'backbones': list at least one backbone"),
        (lambda r: r.update(backbones=["SimpleCNN", "SimpleCNN"]), r"'backbones': .*listed twice"),
        (lambda r: r["register"].update(metric="accuracy"),
         r"'register\.metric': Input should be 'val_accuracy'.*\(got 'accuracy'\)"),
    ],
)  # fmt: skip
def test_names_are_checked_at_load_with_the_key_named(change, message):
    """A typo in a backbone name or metric fails when params.yaml is read, not hours later
    at use (or never: an override for an unknown `VGG61` would otherwise be ignored)."""
    raw = _raw()
    change(raw)
    with pytest.raises(BakeoffError, match=message):
        parse_params(raw)


def test_shared_settings_are_written_once_and_reach_every_stage_that_uses_them():
    """Each stage gets the one top-level value as an argument of its own (the DVC key is
    `seed`, not a copy in its section)."""
    from bakeoff.config.wiring import params_kwargs

    raw = _raw()
    raw.update(seed=7, bootstrap=99, budgets={"edge": {"max_latency_ms": 5.0}})
    raw["evaluate"].update(latency_repeats=11, latency_warmup=2)
    raw["register"]["budget"] = "edge"
    kwargs = params_kwargs(parse_params(raw), "SimpleCNN")
    seeded = {stage for stage, args in kwargs.items() if args.get("seed") == 7}
    assert seeded == {"ingest", "split", "evaluate", "register", "export", "report"}
    assert kwargs["register"]["bootstrap"] == kwargs["report"]["bootstrap"] == 99
    assert kwargs["register"]["budgets"] == kwargs["report"]["budgets"]
    assert kwargs["report"]["budgets"]["edge"].max_latency_ms == 5.0
    timing = (kwargs["export"]["latency_repeats"], kwargs["export"]["latency_warmup"])
    assert timing == (11, 2) == (kwargs["evaluate"]["params"].latency_repeats,
                                 kwargs["evaluate"]["params"].latency_warmup)  # fmt: skip


@pytest.mark.parametrize(
    ("section", "key"),
    [("split", "seed"), ("report", "bootstrap"), ("register", "budgets"),
     ("export", "latency_repeats")],
)  # fmt: skip
def test_a_shared_setting_has_no_second_place_in_a_section(section, key):
    raw = _raw()
    raw[section][key] = 3
    with pytest.raises(BakeoffError, match=rf"unknown key '{section}\.{key}'"):
        parse_params(raw)


def test_a_negative_min_improvement_is_refused_at_load():
    """It would promote a challenger that tests worse than the champion; not clamped to 0."""
    raw = _raw()
    raw["register"]["min_improvement"] = -0.01
    message = r"'register\.min_improvement': Input should be greater than or equal to 0"
    with pytest.raises(BakeoffError, match=message):
        parse_params(raw)


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("train", "batch_size", 0, r"'train\.batch_size': Input should be greater than 0 \(got 0"),
        ("train", "epochs", -1, r"'train\.epochs': Input should be greater than 0 \(got -1\)"),
        ("train", "learning_rate", 0.0, r"'train\.learning_rate': Input should be greater than 0"),
        ("split", "val", 1.0, r"'split\.val': Input should be less than 1 \(got 1\.0\)"),
        ("split", "test", 0.0, r"'split\.test': Input should be greater than 0"),
        ("register", "confidence", 1.5, r"'register\.confidence': Input should be less than 1"),
        ("validate", "max_invalid_fraction", -0.1,
         r"'validate\.max_invalid_fraction': Input should be greater than or equal to 0"),
        ("export", "threads", 0, r"'export\.threads': Input should be greater than 0"),
        ("tune", "trials", -3, r"'tune\.trials': Input should be greater than or equal to 0"),
    ],
)  # fmt: skip
def test_values_out_of_range_are_errors_at_load_naming_the_key(section, key, value, message):
    """`batch_size: 0` fails when params.yaml is read, not as a traceback mid-training."""
    raw = _raw()
    raw[section][key] = value
    with pytest.raises(BakeoffError, match=message):
        parse_params(raw)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["train"].update(weights="imagenet"),
         r"train\.augment is true with a frozen pretrained base.*Set train\.augment: false"),
        (lambda r: r.update(backbones=["InceptionV3"]),
         r"image size 32 is below InceptionV3's minimum of 75"),
        (lambda r: (r.update(backbones=["NASNetLarge"]),
                    r["train"].update(weights="imagenet", augment=False, image_size=224)),
         r"NASNetLarge's ImageNet weights fit 331 px only, not 224"),
    ],
)  # fmt: skip
def test_settings_that_would_cancel_or_break_each_other_are_rejected(change, message):
    """`augment: true` with a frozen base and the feature cache would switch the cache and
    tuning off without a word; a size a backbone cannot take would fail hours later."""
    raw = _raw()
    change(raw)
    with pytest.raises(BakeoffError, match=message):
        parse_params(raw)


def test_register_budget_names_a_budget():
    raw = _raw()
    raw["register"]["budget"] = "egde"
    with pytest.raises(BakeoffError, match=r"register\.budget 'egde' is not in `budgets` \(edge, "):
        parse_params(raw)


@pytest.mark.parametrize("metric", ["test_accuracy", "test_macro_f1"])
def test_register_refuses_to_select_on_the_test_split(metric):
    raw = _raw()
    raw["register"]["metric"] = metric
    with pytest.raises(BakeoffError) as err:
        parse_params(raw)
    message = str(err.value)
    assert f"'register.metric': {metric} would select the model on the test split" in message
    assert "use val_accuracy or val_macro_f1" in message


def _defaults(section) -> dict:
    """A section class's code defaults by key (keys without one are left out)."""
    out = {}
    for field in dataclasses.fields(section):
        if field.default is not dataclasses.MISSING:
            out[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            out[field.name] = field.default_factory()
    return out


def test_every_code_default_equals_the_shipped_params_yaml():
    """A key left out of params.yaml gets the value the shipped file has, not another one:
    the code's defaults and the shipped file never disagree."""
    shipped = load_params(REPO / "params.yaml")
    differ = []
    for key, default in _defaults(Params).items():
        if not dataclasses.is_dataclass(default) and getattr(shipped, key) != default:
            differ.append(f"{key}: code {default!r}, params.yaml {getattr(shipped, key)!r}")
    for section in dataclasses.fields(Params):
        value = getattr(shipped, section.name)
        if not dataclasses.is_dataclass(value):
            continue
        for key, default in _defaults(type(value)).items():
            if getattr(value, key) != default:
                differ.append(f"{section.name}.{key}: code {default!r}, params.yaml "
                              f"{getattr(value, key)!r}")  # fmt: skip
    assert not differ, "; ".join(differ)


@pytest.mark.parametrize(
    ("path", "named"),
    [("data.source", "data.source"), ("train.overrides", "train.overrides"),
     ("budgets", "budgets"), ("data", "data"), ("train", "train")],
)  # fmt: skip
def test_keys_without_a_default_are_required(path, named):
    raw = _raw()
    *parents, key = path.split(".")
    section = raw
    for part in parents:
        section = section[part]
    del section[key]
    with pytest.raises(BakeoffError, match=rf"missing key '{named}': params.yaml must set it"):
        parse_params(raw)


def test_a_key_left_out_takes_the_shipped_value():
    raw = _raw()
    for key in ("epochs", "patience", "min_epochs", "augment", "image_size"):
        del raw["train"][key]
    del raw["data"]["per_class"]
    assert parse_params(raw) == parse_params(_raw())


def test_an_override_out_of_range_names_the_backbone():
    raw = _raw()
    raw["train"]["overrides"] = {"VGG16": {"batch_size": 0}}
    with pytest.raises(BakeoffError, match=r"'train\.overrides\.VGG16\.batch_size': .*than 0"):
        parse_params(raw)


def test_augmentation_without_the_cache_or_from_scratch_is_allowed():
    raw = _raw()
    assert parse_params(raw).train.augment  # the demo: from scratch, augmented
    raw["train"].update(weights="imagenet", cache_features=False)
    assert parse_params(raw).train.augment  # a frozen base, augmented every epoch: asked for
