"""Image tables (the Parquet data contract), groups and bias-ratio subsampling."""
