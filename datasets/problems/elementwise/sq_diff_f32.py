import torch
import torch.nn as nn


class Model(nn.Module):
    """Element-wise squared absolute difference: y = |x - z|^2."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return (x - z).abs().pow(2)


# Estimate (not measured): 3 eager kernels (sub, abs, pow) move about
# 7 x 1.07 GB = 7.5 GB: ~3.0 ms at 2.5 TB/s.
batch_size = 16384
dim = 16384


def get_inputs():
    x = torch.randn(batch_size, dim, dtype=torch.float32)
    z = torch.randn(batch_size, dim, dtype=torch.float32)
    return [x, z]


def get_init_inputs():
    return []
