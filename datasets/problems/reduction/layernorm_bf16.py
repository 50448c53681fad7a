import torch
import torch.nn as nn


class Model(nn.Module):
    """nn.LayerNorm in bf16 over the hidden dimension with affine weight and bias."""

    def __init__(self, hidden: int, eps: float):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, eps=eps, dtype=torch.bfloat16)
        with torch.no_grad():
            self.norm.weight.copy_(torch.randn(hidden) * 0.1 + 1.0)
            self.norm.bias.copy_(torch.randn(hidden) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


# LLM-shaped: 131072 tokens (32 sequences of 4096) x hidden 8192.
num_tokens = 131072
hidden = 8192
eps = 1e-5


def get_inputs():
    return [torch.randn(num_tokens, hidden, dtype=torch.bfloat16)]


def get_init_inputs():
    return [hidden, eps]
