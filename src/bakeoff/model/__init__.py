"""A trained model at work: loading it, its predictions and scores, and timing it."""
