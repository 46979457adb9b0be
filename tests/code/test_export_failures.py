"""A variant the TFLite converter refuses is named with its reason; the others still export."""

from __future__ import annotations

import numpy as np


class ConverterError(Exception):
    """Stands in for the converter's own error (tensorflow.lite.python.convert)."""


def test_a_refused_variant_is_reported_not_raised(monkeypatch):
    import keras
    import tensorflow as tf

    from bakeoff.export import tflite

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    real = tf.lite.TFLiteConverter.from_saved_model

    def from_saved_model(path):
        converter = real(path)
        convert = converter.convert

        def refuse_int8():
            if converter.representative_dataset is not None:  # the int8 variant only
                raise ConverterError("op 'Foo' is neither a custom op nor a flex op\nmore")
            return convert()

        converter.convert = refuse_int8
        return converter

    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_saved_model", from_saved_model)
    out = tflite.convert_all(model, np.zeros((2, 8, 8, 3), "uint8"))
    assert list(out) == list(tflite.VARIANTS)
    assert out["int8"] == (
        "the TFLite converter failed: ConverterError: op 'Foo' is neither a custom op nor a flex op"
    )
    assert all(isinstance(out[v], bytes) for v in tflite.VARIANTS if v != "int8")
