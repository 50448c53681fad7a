"""The PyTorch frontend: load a KernelBench problem, capture its forward pass, and partition it
into fusion regions (IR kernels) and glue (ops left to PyTorch, each with the reason)."""

from ir.frontend.capture import capture, export_problem
from ir.frontend.problem import Problem, ProblemError, load_problem
from ir.frontend.program import Glue, Program, Region, format_program, run_program

__all__ = [
    "Glue", "Problem", "ProblemError", "Program", "Region", "capture", "export_problem",
    "format_program", "load_problem", "run_program",
]
