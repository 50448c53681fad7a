import torch
import torch.nn as nn


class Model(nn.Module):
    """bf16 Conv2d (3x3, with bias), times a scalar, then sigmoid: y = sigmoid(conv(x) * scale)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, scale: float):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                              dtype=torch.bfloat16)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x) * self.scale)


batch_size = 128
in_channels = 128
out_channels = 256
height = 64
width = 64
kernel_size = 3
scale = 0.5


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width, dtype=torch.bfloat16)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, scale]
