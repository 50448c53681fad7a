import torch
import torch.nn as nn


class Model(nn.Module):
    """Linear, residual add, then LayerNorm: y = LayerNorm(x @ W^T + b + x)."""

    def __init__(self, hidden: int, eps: float):
        super().__init__()
        self.linear = nn.Linear(hidden, hidden, dtype=torch.float32)
        self.norm = nn.LayerNorm(hidden, eps=eps, dtype=torch.float32)
        with torch.no_grad():
            self.norm.weight.copy_(torch.randn(hidden) * 0.1 + 1.0)
            self.norm.bias.copy_(torch.randn(hidden) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.linear(x) + x)


batch_size = 8192
hidden = 2048
eps = 1e-5


def get_inputs():
    return [torch.randn(batch_size, hidden, dtype=torch.float32)]


def get_init_inputs():
    return [hidden, eps]
