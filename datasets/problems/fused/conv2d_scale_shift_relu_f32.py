import torch
import torch.nn as nn


class Model(nn.Module):
    """Conv2d (3x3, no bias), per-channel scale and shift (folded batch norm), then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                              bias=False, dtype=torch.float32)
        self.scale = nn.Parameter(torch.randn(out_channels, dtype=torch.float32) * 0.1 + 1.0)
        self.shift = nn.Parameter(torch.randn(out_channels, dtype=torch.float32) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        y = y * self.scale.view(1, -1, 1, 1) + self.shift.view(1, -1, 1, 1)
        return torch.relu(y)


batch_size = 192
in_channels = 128
out_channels = 128
height = 56
width = 56
kernel_size = 3


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width, dtype=torch.float32)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size]
