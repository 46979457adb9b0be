"""Stage `register` (stage): the candidates, the paired promotion test and what a decision says."""
