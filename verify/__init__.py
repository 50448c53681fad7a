"""Verification: the PTX reader, one semantics in two domains (the numpy CPU emulator, the z3
prover), static checks of candidate code, isolated runs, and the timing harness."""
