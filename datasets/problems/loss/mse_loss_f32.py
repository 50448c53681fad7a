import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """Mean squared error between predictions and targets, reduced to a scalar."""

    def __init__(self):
        super().__init__()

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(predictions, targets)


batch_size = 16384
dim = 16384


def get_inputs():
    predictions = torch.randn(batch_size, dim, dtype=torch.float32)
    targets = torch.randn(batch_size, dim, dtype=torch.float32)
    return [predictions, targets]


def get_init_inputs():
    return []
