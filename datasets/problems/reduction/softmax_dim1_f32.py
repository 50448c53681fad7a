import torch
import torch.nn as nn


class Model(nn.Module):
    """Softmax over the middle axis (dim 1) of a 3-d tensor."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=1)


batch_size = 128
channels = 1024
length = 4096


def get_inputs():
    return [torch.randn(batch_size, channels, length, dtype=torch.float32)]


def get_init_inputs():
    return []
