import torch
import torch.nn as nn


class Model(nn.Module):
    """Argmin over the last dimension of a 2-d bf16 tensor (int64 indices)."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.argmin(x, dim=-1)


batch_size = 32768
dim = 65536


def get_inputs():
    return [torch.randn(batch_size, dim, dtype=torch.bfloat16)]


def get_init_inputs():
    return []
