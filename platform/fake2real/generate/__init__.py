"""Synthetic data: prompt plans, generator backends, and the Ray Data generation job."""
