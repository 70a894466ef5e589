"""How a network is trained: optimizers, and the trainers that run optimizer steps on the
host or on the GPU."""
