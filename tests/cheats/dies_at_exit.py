"""Computes the right output in a thread still running when forward returns, and takes its process
down at exit, after the check has written its report: the death must not hide what the check found."""
import atexit
import os
import signal
import threading
import time

import torch
import torch.nn as nn

atexit.register(lambda: os.kill(os.getpid(), signal.SIGSEGV))


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)

        def work():
            time.sleep(0.05)
            out.copy_(torch.relu(x))

        threading.Thread(target=work, daemon=True).start()
        return out
