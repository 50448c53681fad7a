import torch
import torch.nn as nn


class Model(nn.Module):
    """Softsign: y = x / (1 + |x|)."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / (1.0 + x.abs())


batch_size = 16384
dim = 16384


def get_inputs():
    return [torch.randn(batch_size, dim, dtype=torch.float32)]


def get_init_inputs():
    return []
