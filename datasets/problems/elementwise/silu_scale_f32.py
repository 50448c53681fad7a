import torch
import torch.nn as nn


class Model(nn.Module):
    """SiLU followed by a scale: y = x * sigmoid(x) * scale."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x) * self.scale


batch_size = 16384
dim = 16384
scale = 1.5


def get_inputs():
    return [torch.randn(batch_size, dim, dtype=torch.float32)]


def get_init_inputs():
    return [scale]
