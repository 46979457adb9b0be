"""The data stages: ingest, validate (with its expectations and report), split; and how
an image file becomes pixels (images) and a split becomes batches (dataset)."""
