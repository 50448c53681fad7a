import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """Cosine-similarity loss in bf16: 1 - mean over rows of cos(a_i, b_i) along dim 1."""

    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return 1 - F.cosine_similarity(a, b, dim=1).mean()


batch_size = 32768
dim = 8192


def get_inputs():
    a = torch.randn(batch_size, dim, dtype=torch.bfloat16)
    b = torch.randn(batch_size, dim, dtype=torch.bfloat16)
    return [a, b]


def get_init_inputs():
    return []
