import torch
import torch.nn as nn


class Model(nn.Module):
    """bf16 matmul with a weight parameter, plus bias, then ReLU: y = relu(x @ W + b)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        w = torch.randn(in_features, out_features) * in_features ** -0.5
        self.weight = nn.Parameter(w.to(torch.bfloat16))
        self.bias = nn.Parameter((torch.randn(out_features) * 0.1).to(torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.matmul(x, self.weight) + self.bias)


batch_size = 8192
in_features = 8192
out_features = 8192


def get_inputs():
    return [torch.randn(batch_size, in_features, dtype=torch.bfloat16)]


def get_init_inputs():
    return [in_features, out_features]
