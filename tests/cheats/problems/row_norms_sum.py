import torch
import torch.nn as nn


class Model(nn.Module):
    """The sum of each row's softmax: 1 whatever the inputs, so no trial tells a constant from it."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=-1).sum(dim=-1)


batch_size = 256
dim = 1024


def get_inputs():
    return [torch.randn(batch_size, dim, dtype=torch.float32)]


def get_init_inputs():
    return []
