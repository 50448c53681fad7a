import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """LLM-head cross-entropy in bf16: logits [tokens, vocab] against token-id targets, mean-reduced."""

    def __init__(self):
        super().__init__()

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets)


# LLM-shaped: 8192 tokens x a 128256-entry vocabulary.
num_tokens = 8192
vocab_size = 128256


def get_inputs():
    logits = torch.randn(num_tokens, vocab_size, dtype=torch.bfloat16)
    targets = torch.randint(0, vocab_size, (num_tokens,), dtype=torch.int64)
    return [logits, targets]


def get_init_inputs():
    return []
