import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """GELU-gated product of two inputs (GeGLU gate) in bf16: y = gelu(x) * g."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return F.gelu(x) * g


# LLM-shaped MLP activations: 16384 tokens x intermediate size 28672.
batch_size = 16384
dim = 28672


def get_inputs():
    x = torch.randn(batch_size, dim, dtype=torch.bfloat16)
    g = torch.randn(batch_size, dim, dtype=torch.bfloat16)
    return [x, g]


def get_init_inputs():
    return []
