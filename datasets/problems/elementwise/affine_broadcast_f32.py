import torch
import torch.nn as nn


class Model(nn.Module):
    """Per-feature affine with broadcast parameters: y = x * scale + shift, x [N, D], scale/shift [D]."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.randn(dim, dtype=torch.float32) * 0.1 + 1.0)
        self.shift = nn.Parameter(torch.randn(dim, dtype=torch.float32) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


batch_size = 32768
dim = 16384


def get_inputs():
    return [torch.randn(batch_size, dim, dtype=torch.float32)]


def get_init_inputs():
    return [dim]
