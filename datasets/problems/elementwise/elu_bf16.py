import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """ELU in bf16: y = x if x > 0 else alpha * (exp(x) - 1)."""

    def __init__(self, alpha: float):
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(x, alpha=self.alpha)


batch_size = 32768
dim = 32768
alpha = 0.8


def get_inputs():
    return [torch.randn(batch_size, dim, dtype=torch.bfloat16)]


def get_init_inputs():
    return [alpha]
