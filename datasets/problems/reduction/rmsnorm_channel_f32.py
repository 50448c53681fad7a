import torch
import torch.nn as nn


class Model(nn.Module):
    """RMS norm over the channel axis of an NCHW tensor: y = x * rsqrt(mean_c(x^2) + eps) * weight[c]."""

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.randn(channels, dtype=torch.float32) * 0.1 + 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)
        return x * rms * self.weight.view(1, -1, 1, 1)


batch_size = 32
channels = 256
height = 128
width = 128
eps = 1e-6


def get_inputs():
    return [torch.randn(batch_size, channels, height, width, dtype=torch.float32)]


def get_init_inputs():
    return [channels, eps]
