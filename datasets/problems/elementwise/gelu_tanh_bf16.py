import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """Tanh-approximate GELU in bf16: y = F.gelu(x, approximate="tanh")."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh")


batch_size = 65536
dim = 16384


def get_inputs():
    return [torch.randn(batch_size, dim, dtype=torch.bfloat16)]


def get_init_inputs():
    return []
