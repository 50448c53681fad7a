import torch
import torch.nn as nn


class Model(nn.Module):
    """Hand-written RMS norm over the last axis in bf16: y = x * rsqrt(mean(x^2) + eps) * weight."""

    def __init__(self, hidden: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter((torch.randn(hidden) * 0.1 + 1.0).to(torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


# LLM-shaped: 65536 tokens (16 sequences of 4096) x hidden 8192.
num_tokens = 65536
hidden = 8192
eps = 1e-6


def get_inputs():
    return [torch.randn(num_tokens, hidden, dtype=torch.bfloat16)]


def get_init_inputs():
    return [hidden, eps]
