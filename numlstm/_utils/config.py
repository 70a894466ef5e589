"""Tunables shared by the kernels and their drivers."""

#: Fewest batch rows a CPU thread is given. Below this, splitting the batch costs more in
#: thread start-up than the smaller per-step products save.
MIN_ROWS_PER_THREAD = 4

#: Blocks of batch rows the CPU backward pass sums its weight gradients over, the same at
#: any thread count, so that training does not change bit for bit with it. On two threads
#: each thread sums the rows it swept, still in its cache; each further block costs one
#: more copy of the weight gradients to add up.
GRADIENT_ROW_BLOCKS = 2

#: Float types the kernels are compiled for.
SUPPORTED_DTYPES = ("float32", "float64")

#: CUDA threads per block for the elementwise gate kernels.
CUDA_THREADS_PER_BLOCK = 128

#: Edge of the square tiles of the CUDA matrix-product kernel (shared memory).
CUDA_TILE = 16

#: Each thread of the CUDA matrix-product and step kernels computes this many rows (and, in
#: the product, as many columns) of its block's output from registers.
CUDA_REGISTER_TILE = 4

#: Hidden units per thread in the CUDA backward step kernel.
CUDA_UNIT_TILE = 2

#: Rows of the gate-gradient buffer summed by one thread block of the bias-gradient kernel.
CUDA_ROWS_PER_SUM_BLOCK = 256

#: Largest recurrent product (multiply-adds per timestep) whose sweep runs as one
#: cooperative launch. A launch costs ~50 us of host time, which only matters while a step
#: takes about that long; larger steps hide it, and the one-launch kernels hold more
#: registers (measured on an H200: at B=256, H=1024 the backward sweep ran 95 ms in one
#: launch against 86 ms launched per step).
CUDA_SWEEP_MAX_STEP_FMA = 2**28
