import torch
import torch.nn as nn


class Model(nn.Module):
    """Element-wise Euclidean magnitude of two inputs: y = sqrt(x * x + z * z)."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(x * x + z * z)


batch_size = 16384
dim = 16384


def get_inputs():
    x = torch.randn(batch_size, dim, dtype=torch.float32)
    z = torch.randn(batch_size, dim, dtype=torch.float32)
    return [x, z]


def get_init_inputs():
    return []
