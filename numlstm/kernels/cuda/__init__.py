"""CUDA kernels (``numba.cuda``), the twins of :mod:`numlstm.kernels.cpu`."""
