import torch
import torch.nn as nn


class Model(nn.Module):
    """ReLU of inputs drawn from [0, 1): on the problem's own inputs, y = x."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


batch_size = 4096
dim = 4096


def get_inputs():
    return [torch.rand(batch_size, dim, dtype=torch.float32)]


def get_init_inputs():
    return []
