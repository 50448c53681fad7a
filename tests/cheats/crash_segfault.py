"""Dies of a signal inside forward, as a kernel with an illegal address can take its process down."""
import os
import signal

import torch.nn as nn


class ModelNew(nn.Module):
    def forward(self, x):
        os.kill(os.getpid(), signal.SIGSEGV)
