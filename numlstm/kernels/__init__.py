"""Compiled kernels: numba functions on arrays, knowing nothing of layers or estimators.

* :mod:`numlstm.kernels.activations` -- gate nonlinearities shared by the CPU and CUDA
  kernels;
* :mod:`numlstm.kernels.cpu` -- ``@njit`` kernels: the recurrent sweeps, their cell math
  and numlstm's own matrix products;
* :mod:`numlstm.kernels.cuda` -- the ``numba.cuda`` twins.

Only :mod:`numlstm._utils` may be imported from here.
"""
