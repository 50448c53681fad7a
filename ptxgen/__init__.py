"""Lowering IR kernels to PTX for NVIDIA targets, loading them, and the `ptxgen` command line."""
