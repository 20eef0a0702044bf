"""bench_powerprop: a reproducibility harness for Powerpropagation and sparse-training baselines."""

__version__ = "0.1.0"
