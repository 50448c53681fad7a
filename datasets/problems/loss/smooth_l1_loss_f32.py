import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """Smooth L1 (Huber-like) loss with threshold beta, mean-reduced to a scalar."""

    def __init__(self, beta: float):
        super().__init__()
        self.beta = beta

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.smooth_l1_loss(predictions, targets, beta=self.beta)


batch_size = 16384
dim = 16384
beta = 0.5


def get_inputs():
    predictions = torch.randn(batch_size, dim, dtype=torch.float32)
    targets = torch.randn(batch_size, dim, dtype=torch.float32)
    return [predictions, targets]


def get_init_inputs():
    return [beta]
