import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """Mish written out: y = x * tanh(softplus(x))."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.tanh(F.softplus(x))


batch_size = 16384
dim = 16384


def get_inputs():
    return [torch.randn(batch_size, dim, dtype=torch.float32)]


def get_init_inputs():
    return []
