"""Datasets: small in-memory arrays (digits, MNIST IDX) and FFCV .beton pipelines (vision)."""
