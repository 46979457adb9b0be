"""The backbone: the registry, building a base with its preprocessing and weights, and its pooled
features."""
