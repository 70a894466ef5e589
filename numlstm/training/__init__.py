"""How a network is trained: optimizers, the trainers that run optimizer steps on the host
or on the GPU, the mini-batch and L-BFGS loops, checkpoints, memory planning."""
