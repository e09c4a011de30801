"""The generic training loop and what it needs: devices, precision, checkpoints, logging."""
