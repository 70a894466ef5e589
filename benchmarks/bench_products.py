"""The register-blocked matrix products under every CPU kernel, on one core.

Two products carry most of a layer's arithmetic: a timestep's input and recurrent
products in one pass (``packed_products``, ``(B x (I+H)) @ ((I+H) x 4H)``, the packed
weights) and the weight gradients (``matmul_tn``, ``d_gates^T @ inputs`` over one thread's
rows and all steps). Each is timed alone, float32, at the shapes of H=128 and H=512 (the layer
benchmarks' and ``compare.py``'s configurations), so a change of the tiles shows here
before it is diluted in a whole pass; ``track_*_gflops`` turn the times into rates to
compare with the core's peak.
"""

import time

import numpy as np

#: (rows, input part, recurrent part, gate columns) of one timestep's product: a
#: thread's share of a batch of 64 at H=128, and of 128 at H=512 (two threads).
STEP_SHAPES = [(32, 32, 128, 512), (64, 128, 512, 2048)]
#: (gate columns, hidden, rows x steps) of ``dW_hh``'s product at the same sizes: one
#: thread's block of rows (32 x 100 at H=128, 64 x 50 at H=512).
GRADIENT_SHAPES = [(512, 128, 3200), (2048, 512, 3200)]


def _kernels():
    from numlstm.kernels.cpu import packed_gemm

    return packed_gemm


def _rate(seconds, flops):
    return flops / seconds / 1e9


def _best_of(call, repeats=20):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


class StepProduct:
    """``C = A @ B + A2 @ B2`` with packed weights: one timestep of a forward pass."""

    params = [STEP_SHAPES]
    param_names = ["rows, inputs, hidden, gate columns"]
    timeout = 240

    def setup(self, shape):
        gemm = _kernels()
        rows, n_in, n_hidden, n_cols = shape
        rng = np.random.default_rng(0)
        self.a = rng.standard_normal((rows, n_in)).astype(np.float32)
        self.a2 = rng.standard_normal((rows, n_hidden)).astype(np.float32)
        nr = gemm.panel_width(np.float32)
        n_panels = -(-n_cols // nr)
        self.packed = np.zeros((n_panels, n_in, nr), np.float32)
        self.packed2 = np.zeros((n_panels, n_hidden, nr), np.float32)
        gemm.pack_transposed(rng.standard_normal((n_cols, n_in)).astype(np.float32),
                             self.packed)
        gemm.pack_transposed(rng.standard_normal((n_cols, n_hidden)).astype(np.float32),
                             self.packed2)
        self.c = np.zeros((rows, n_cols), np.float32)
        self.edge = np.zeros((gemm.MAX_TILE_ROWS, nr), np.float32)
        self.flops = 2 * rows * n_cols * (n_in + n_hidden)

        def call():
            gemm.matmul_packed2(rows, n_cols, self.a.ctypes.data, n_in, self.packed,
                                self.a2.ctypes.data, n_hidden, self.packed2,
                                self.c.ctypes.data, n_cols, self.edge)

        self.call = call
        call()

    def time_step_product(self, shape):
        self.call()

    def track_step_product_gflops(self, shape):
        return _rate(_best_of(self.call), self.flops)

    track_step_product_gflops.unit = "GFLOP/s"


class WeightGradientProduct:
    """``C += A^T @ B``, nothing packed: a layer's ``dW_hh`` over all rows and steps."""

    params = [GRADIENT_SHAPES]
    param_names = ["gate columns, hidden, rows x steps"]
    timeout = 240

    def setup(self, shape):
        gemm = _kernels()
        m, n, k = shape
        rng = np.random.default_rng(0)
        self.a = rng.standard_normal((k, m)).astype(np.float32)
        self.b = rng.standard_normal((k, n)).astype(np.float32)
        self.c = np.zeros((m, n), np.float32)
        nr = gemm.panel_width(np.float32)
        self.edge = np.zeros((gemm.MAX_TILE_ROWS, nr), np.float32)
        self.edge_panel = np.zeros((gemm.K_BLOCK, nr), np.float32)
        self.flops = 2 * m * n * k

        def call():
            gemm.matmul_tn(m, n, k, self.a.ctypes.data, m, self.b.ctypes.data, n,
                           self.c.ctypes.data, n, self.edge, self.edge_panel)

        self.call = call
        call()

    def time_weight_gradient_product(self, shape):
        self.call()

    def track_weight_gradient_product_gflops(self, shape):
        return _rate(_best_of(self.call, repeats=5), self.flops)

    track_weight_gradient_product_gflops.unit = "GFLOP/s"
