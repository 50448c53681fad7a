import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    """nn.Linear followed by exact GELU: y = gelu(x @ W^T + b)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, dtype=torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.linear(x))


# Estimate (not measured): GEMM 2 x 8192 x 4096 x 4096 = 275 GFLOP, ~5.5 ms at
# 50 TFLOP/s fp32; GELU moves 2 x 0.13 GB: ~0.1 ms at 2.5 TB/s. ~5.6 ms total.
batch_size = 8192
in_features = 4096
out_features = 4096


def get_inputs():
    return [torch.randn(batch_size, in_features, dtype=torch.float32)]


def get_init_inputs():
    return [in_features, out_features]
