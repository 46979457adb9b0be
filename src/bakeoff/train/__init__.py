"""The train stage (stage), its phases, the backbone registry (backbones) and model building
(model)."""
