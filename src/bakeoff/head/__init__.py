"""The recipe's head on cached features: its trainer and its equal-budget tuning, for training and
cross-validation alike."""
