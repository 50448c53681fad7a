import torch
import torch.nn as nn


class Model(nn.Module):
    """Hinge loss with targets in {-1, +1}: mean(clamp(1 - pred * target, min=0))."""

    def __init__(self):
        super().__init__()

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.clamp(1 - predictions * targets, min=0).mean()


batch_size = 16384
dim = 8192


def get_inputs():
    predictions = torch.randn(batch_size, dim, dtype=torch.float32)
    targets = torch.randint(0, 2, (batch_size, dim), dtype=torch.float32) * 2 - 1
    return [predictions, targets]


def get_init_inputs():
    return []
