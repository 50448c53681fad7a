"""Computes ReLU in place: the right output, in the input's memory."""
import torch.nn as nn


class ModelNew(nn.Module):
    def forward(self, x):
        return x.clamp_min_(0)
