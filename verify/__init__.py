"""Verification: the timing harness (more to come: PTX proofs, the CPU emulator, the checker)."""
