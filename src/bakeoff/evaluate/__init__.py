"""Stage `evaluate` (stage): test scores, cross-validation, seeds' spread and latency of one
backbone."""
