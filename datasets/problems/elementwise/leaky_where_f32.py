import torch
import torch.nn as nn


class Model(nn.Module):
    """Leaky ReLU written with where: y = where(x > 0, x, alpha * x)."""

    def __init__(self, alpha: float):
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, self.alpha * x)


batch_size = 16384
dim = 16384
alpha = 0.2


def get_inputs():
    return [torch.randn(batch_size, dim, dtype=torch.float32)]


def get_init_inputs():
    return [alpha]
