"""Loading a saved bakeoff model, including models saved by older versions of bakeoff.

bakeoff's models hold only built-in Keras layers; models saved by older versions carry the
custom `Preprocess` layer, so every loader inside bakeoff (evaluate, seeds, export, and
`tracking.load_keras_model` for the registry) passes `LEGACY_OBJECTS` to Keras explicitly:
loading never depends on some other module having been imported first. Keras is imported
at the top: only the functions that load a model import this module.
"""

from __future__ import annotations

from pathlib import Path

import keras


@keras.saving.register_keras_serializable(package="bakeoff")
class Preprocess(keras.layers.Layer):
    """The custom preprocessing layer of models saved before bakeoff used built-in layers.

    Kept only so that those models (in models/ and the MLflow registry) still load inside
    bakeoff; new models never contain it, and loading one outside bakeoff fails with
    Keras's "Could not locate class 'Preprocess'" (retrain to get a portable model).
    """

    def __init__(self, mode: str = "none", **kwargs):
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, inputs):
        if self.mode == "none":
            return inputs
        return getattr(keras.applications, self.mode).preprocess_input(inputs)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


# Keras looks custom classes up by their registered name (`package>Class`).
LEGACY_OBJECTS = {"bakeoff>Preprocess": Preprocess}


def load_trained(path: Path | str) -> keras.Model:
    """Load a saved bakeoff model (older ones need the legacy `Preprocess` layer)."""
    return keras.saving.load_model(path, custom_objects=LEGACY_OBJECTS)
