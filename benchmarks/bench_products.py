"""The register-blocked matrix products under every CPU kernel, on one core.

Two products carry most of a layer's arithmetic: a timestep's input and recurrent
products in one pass (``packed_products``, ``(B x (I+H)) @ ((I+H) x 4H)``, the packed
weights) and the weight gradients (``matmul_tn``, ``d_gates^T @ inputs`` over one thread's
rows and all steps). Each is timed alone, float32, at the shapes of H=128 and H=512 (the layer
benchmarks' and ``compare.py``'s configurations), so a change of the tiles shows here
before it is diluted in a whole pass; ``track_gflops`` turns the times into rates to
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


class _ProductBench:
    """Times ``call`` from :meth:`prepare` and reports its rate; ``repeats`` calls give
    the best time for the rate."""

    timeout = 240
    repeats = 20

    def setup(self, shape):
        self.call, self.flops = self.prepare(_kernels(), shape, np.random.default_rng(0))
        self.call()  # compiles, or loads from numba's cache

    def time_product(self, shape):
        self.call()

    def track_gflops(self, shape):
        return _rate(_best_of(self.call, self.repeats), self.flops)

    track_gflops.unit = "GFLOP/s"


class StepProduct(_ProductBench):
    """``C = A @ B + A2 @ B2`` with packed weights: one timestep of a forward pass."""

    params = [STEP_SHAPES]
    param_names = ["rows, inputs, hidden, gate columns"]

    def prepare(self, gemm, shape, rng):
        rows, n_in, n_hidden, n_cols = shape
        a = rng.standard_normal((rows, n_in)).astype(np.float32)
        a2 = rng.standard_normal((rows, n_hidden)).astype(np.float32)
        nr = gemm.panel_width(np.float32)
        n_panels = -(-n_cols // nr)
        packed = np.zeros((n_panels, n_in, nr), np.float32)
        packed2 = np.zeros((n_panels, n_hidden, nr), np.float32)
        gemm.pack_transposed(rng.standard_normal((n_cols, n_in)).astype(np.float32), packed)
        gemm.pack_transposed(rng.standard_normal((n_cols, n_hidden)).astype(np.float32),
                             packed2)
        c = np.zeros((rows, n_cols), np.float32)
        edge = np.zeros((gemm.MAX_TILE_ROWS, nr), np.float32)

        def call():
            gemm.matmul_packed2(rows, n_cols, a.ctypes.data, n_in, packed, a2.ctypes.data,
                                n_hidden, packed2, c.ctypes.data, n_cols, edge)

        return call, 2 * rows * n_cols * (n_in + n_hidden)


class WeightGradientProduct(_ProductBench):
    """``C += A^T @ B``, nothing packed: a layer's ``dW_hh`` over one thread's rows and
    all steps."""

    params = [GRADIENT_SHAPES]
    param_names = ["gate columns, hidden, rows x steps"]
    repeats = 5

    def prepare(self, gemm, shape, rng):
        m, n, k = shape
        a = rng.standard_normal((k, m)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        c = np.zeros((m, n), np.float32)
        nr = gemm.panel_width(np.float32)
        edge = np.zeros((gemm.MAX_TILE_ROWS, nr), np.float32)
        edge_panel = np.zeros((gemm.K_BLOCK, nr), np.float32)

        def call():
            gemm.matmul_tn(m, n, k, a.ctypes.data, m, b.ctypes.data, n, c.ctypes.data, n,
                           edge, edge_panel)

        return call, 2 * m * n * k
