"""MLflow: runs and their nesting, metric names, the per-report logging callback."""
