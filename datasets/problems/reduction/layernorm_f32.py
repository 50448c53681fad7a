import torch
import torch.nn as nn


class Model(nn.Module):
    """nn.LayerNorm over the last dimension with affine weight and bias."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps, dtype=torch.float32)
        with torch.no_grad():
            self.norm.weight.copy_(torch.randn(dim) * 0.1 + 1.0)
            self.norm.bias.copy_(torch.randn(dim) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


batch_size = 32768
dim = 16384
eps = 1e-5


def get_inputs():
    return [torch.randn(batch_size, dim, dtype=torch.float32)]


def get_init_inputs():
    return [dim, eps]
