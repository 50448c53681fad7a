import torch
import torch.nn as nn


class Model(nn.Module):
    """Per-feature affine in bf16 with broadcast parameters: y = x * scale + shift, x [N, D], scale/shift [D]."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter((torch.randn(dim) * 0.1 + 1.0).to(torch.bfloat16))
        self.shift = nn.Parameter((torch.randn(dim) * 0.1).to(torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


# LLM-shaped activations: 65536 tokens (16 sequences of 4096) x hidden 8192.
batch_size = 65536
dim = 8192


def get_inputs():
    return [torch.randn(batch_size, dim, dtype=torch.bfloat16)]


def get_init_inputs():
    return [dim]
