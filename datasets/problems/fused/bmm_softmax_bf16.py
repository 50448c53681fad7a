import torch
import torch.nn as nn


class Model(nn.Module):
    """Scaled attention scores in bf16: softmax(bmm(q, k^T) / sqrt(head_dim), dim=-1)."""

    def __init__(self):
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        scale = q.shape[-1] ** -0.5
        scores = torch.bmm(q, k.transpose(1, 2)) * scale
        return torch.softmax(scores, dim=-1)


# q, k: [batch * heads, seq_len, head_dim] (e.g. 4 sequences x 32 heads).
batch_heads = 128
seq_len = 2048
head_dim = 128


def get_inputs():
    q = torch.randn(batch_heads, seq_len, head_dim, dtype=torch.bfloat16)
    k = torch.randn(batch_heads, seq_len, head_dim, dtype=torch.bfloat16)
    return [q, k]


def get_init_inputs():
    return []
