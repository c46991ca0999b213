"""MLflow: runs and their nesting, run and tag names (names.py), logged params, metric names, the per-report logging callback."""
