import torch
import torch.nn as nn


class Model(nn.Module):
    """Element-wise squared absolute difference: y = |x - z|^2."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return (x - z).abs().pow(2)


batch_size = 16384
dim = 16384


def get_inputs():
    x = torch.randn(batch_size, dim, dtype=torch.float32)
    z = torch.randn(batch_size, dim, dtype=torch.float32)
    return [x, z]


def get_init_inputs():
    return []
