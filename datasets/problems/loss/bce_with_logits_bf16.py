import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """Binary cross-entropy with logits against soft targets in [0, 1], mean-reduced, bf16."""

    def __init__(self):
        super().__init__()

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, targets)


batch_size = 16384
dim = 16384


def get_inputs():
    logits = torch.randn(batch_size, dim, dtype=torch.bfloat16)
    targets = torch.rand(batch_size, dim, dtype=torch.bfloat16)
    return [logits, targets]


def get_init_inputs():
    return []
