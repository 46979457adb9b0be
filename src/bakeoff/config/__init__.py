"""The settings: params.yaml as frozen dataclasses, the project's folders, and each stage's
arguments."""
