import torch
import torch.nn as nn


class Model(nn.Module):
    """Scaled attention scores: softmax(bmm(q, k^T) / sqrt(head_dim), dim=-1)."""

    def __init__(self):
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        scale = q.shape[-1] ** -0.5
        scores = torch.bmm(q, k.transpose(1, 2)) * scale
        return torch.softmax(scores, dim=-1)


# q, k: [batch * heads, seq_len, head_dim].
batch_heads = 64
seq_len = 2048
head_dim = 64


def get_inputs():
    q = torch.randn(batch_heads, seq_len, head_dim, dtype=torch.float32)
    k = torch.randn(batch_heads, seq_len, head_dim, dtype=torch.float32)
    return [q, k]


def get_init_inputs():
    return []
