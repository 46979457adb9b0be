"""Stage `export`: the champion as TFLite variants, each re-evaluated on the test split."""
