"""The train stage, one module per job.

- `stage`: `bakeoff train <backbone>`: one run per seed, the best by validation kept.
- `run`: one seed's run: its lifecycle (MLflow run, clean-up) and its phases in order.
- `resume`: what a crashed run left, and whether a new attempt may continue it.
- `outputs`: what a finished run writes (model.keras, train.json, history) and logs.
- `keras_phase`: a phase trained by Keras `fit` with the recipe's callbacks.
- `frozen_phase`: phase 1 on cached features of a frozen base (the head, tuned).
- `head_trainer`: the head's compiled training loop on features; `tune`: its Optuna search.
- `history`: the per-epoch history files of all phases and the best epoch.
- `inputs`, `features`: the pixels and feature caches a run streams; `model`: building it.
"""
