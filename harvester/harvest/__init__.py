"""A run: the pipeline and its stages, from listing to rows, plus the run-level commands."""
