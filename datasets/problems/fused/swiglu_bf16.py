import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """SwiGLU gate in bf16: y = silu(x @ W_gate^T) * (x @ W_up^T), two bias-free linears."""

    def __init__(self, hidden: int, intermediate: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False, dtype=torch.bfloat16)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False, dtype=torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.gate_proj(x)) * self.up_proj(x)


# LLM-shaped MLP: 8192 tokens, hidden 4096, intermediate 14336.
num_tokens = 8192
hidden = 4096
intermediate = 14336


def get_inputs():
    return [torch.randn(num_tokens, hidden, dtype=torch.bfloat16)]


def get_init_inputs():
    return [hidden, intermediate]
