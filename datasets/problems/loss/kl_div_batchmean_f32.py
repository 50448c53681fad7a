import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """KL divergence F.kl_div(log_probs, target_probs, reduction="batchmean"), a scalar."""

    def __init__(self):
        super().__init__()

    def forward(self, log_probs: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
        return F.kl_div(log_probs, target_probs, reduction="batchmean")


batch_size = 4096
num_classes = 32768


def get_inputs():
    log_probs = torch.log_softmax(torch.randn(batch_size, num_classes, dtype=torch.float32), dim=-1)
    target_probs = torch.softmax(torch.randn(batch_size, num_classes, dtype=torch.float32), dim=-1)
    return [log_probs, target_probs]


def get_init_inputs():
    return []
