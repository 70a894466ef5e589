"""CUDA kernels (``numba.cuda``), the twins of :mod:`numlstm.kernels.cpu`.

One module per kernel family, each kernel at module level with its launch configuration
in its docstring; the host drivers that allocate buffers and launch them are
:mod:`numlstm.nn.cuda_backend` and :mod:`numlstm.training.device_trainer`.

* :mod:`~numlstm.kernels.cuda.gemm` -- the tiled matrix product behind every large
  product (input projection, weight and input gradients, generic recurrent products,
  dense head);
* :mod:`~numlstm.kernels.cuda.lstm` -- the fused plain-LSTM step kernels, forward and
  backward, one launch per timestep or one cooperative launch per sweep;
* :mod:`~numlstm.kernels.cuda.cells` -- the per-step elementwise kernels of the GRU, the
  RNN and the LSTM with a projection or peepholes;
* :mod:`~numlstm.kernels.cuda.reductions` -- column sums and fills;
* :mod:`~numlstm.kernels.cuda.training_ops` -- the rest of a device training step: batch
  gathers, losses, one-block reductions, clipping, Adam and SGD;
* :mod:`~numlstm.kernels.cuda.activations` -- the gate nonlinearities of
  :mod:`numlstm.kernels.activations`, chosen by float type;
* :mod:`~numlstm.kernels.cuda.tiling` -- the compile-time tiling of ``gemm`` and ``lstm``
  and their recompilation for another tiling;
* :mod:`~numlstm.kernels.cuda.simulator` -- whether the CUDA simulator is on.

The float type of every kernel is that of its array arguments: numba compiles one version
per argument types.
"""
