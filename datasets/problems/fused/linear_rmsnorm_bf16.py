import torch
import torch.nn as nn


class Model(nn.Module):
    """bf16 bias-free Linear followed by hand-written RMS norm over the last axis with a weight."""

    def __init__(self, hidden: int, eps: float):
        super().__init__()
        self.proj = nn.Linear(hidden, hidden, bias=False, dtype=torch.bfloat16)
        self.eps = eps
        self.weight = nn.Parameter((torch.randn(hidden) * 0.1 + 1.0).to(torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        return h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


# LLM-shaped: 16384 tokens x hidden 4096.
num_tokens = 16384
hidden = 4096
eps = 1e-6


def get_inputs():
    return [torch.randn(num_tokens, hidden, dtype=torch.bfloat16)]


def get_init_inputs():
    return [hidden, eps]
