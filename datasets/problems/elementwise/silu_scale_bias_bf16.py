import torch
import torch.nn as nn


class Model(nn.Module):
    """Scaled SiLU plus a constant bias in bf16: y = x * sigmoid(x) * scale + bias."""

    def __init__(self, scale: float, bias: float):
        super().__init__()
        self.scale = scale
        self.bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x) * self.scale + self.bias


# LLM-shaped activations: 65536 tokens (16 sequences of 4096) x hidden 8192.
batch_size = 65536
dim = 8192
scale = 0.75
bias = 0.25


def get_inputs():
    return [torch.randn(batch_size, dim, dtype=torch.bfloat16)]


def get_init_inputs():
    return [scale, bias]
