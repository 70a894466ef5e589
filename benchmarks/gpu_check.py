"""Check numlstm's CUDA backend against the CPU kernels, then time it against cuDNN.

numba-cuda 0.30 registers an overload for ``np.row_stack``, which NumPy 2.5 removed; on
such an install this script puts the alias back before numba.cuda compiles anything.

One prepared run for a real GPU::

    python benchmarks/gpu_check.py            # checks, then timings (a few minutes)
    python benchmarks/gpu_check.py --quick    # tiny shapes on the CUDA simulator, no timing

1. Correctness: forward, inference and backward of single layers (both directions, ragged
   lengths, initial states) and of a 2-layer bidirectional :class:`numlstm.LSTM`, CUDA
   against the CPU kernels, in float64 (to 1e-9 relative to the largest entry) and float32
   (1e-4).
2. Speed, float32: forward (inference) and a training step (forward + backward with the
   input gradient) of numlstm against PyTorch's cuDNN ``nn.LSTM`` when torch with CUDA is
   importable (otherwise numlstm alone). numlstm is timed twice: through the layer API
   (host NumPy arrays in and out, what a user calls) and at the device level (arrays
   already on the GPU, as cuDNN is timed). cuDNN is timed with PyTorch's defaults (TF32
   tensor cores allowed) and in strict FP32. Each time is the median of repeats after a
   warm-up, each repeat ending with a device synchronisation.
3. Fit: seconds per epoch of an ``LSTMRegressor`` fit with ``device="cuda"`` (everything on
   the GPU for the whole fit) against ``device="cpu"``.
4. Exit status 1 if any check fails (timings still print), 2 if no GPU is usable.

``--quick`` sets ``NUMBA_ENABLE_CUDASIM=1`` before numba is imported, runs the checks on
tiny shapes and walks through the timing code once on a tiny problem, so the script is
known to work before GPU time is spent on it.
"""

import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: (batch, time, input, hidden, num_layers, bidirectional) of the timed configurations.
TIMED = [
    (32, 50, 8, 32, 1, False),
    (64, 100, 32, 128, 1, False),
    (64, 100, 64, 256, 1, False),
    (128, 50, 128, 512, 1, False),
    (32, 50, 16, 64, 2, True),
    (256, 100, 256, 1024, 1, False),
]

#: (batch, time, input, hidden, directions, ragged, initial state) of the layer checks.
CHECKED = [
    (3, 5, 4, 3, 2, True, True),
    (17, 9, 5, 33, 1, True, False),
    (70, 6, 40, 20, 2, True, True),
    (32, 20, 8, 64, 2, False, False),
    (130, 12, 130, 130, 1, True, True),
]
CHECKED_QUICK = [
    (3, 5, 4, 3, 2, True, True),
    (9, 4, 6, 5, 1, True, False),
]

RTOL = {"float64": 1e-9, "float32": 1e-4}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny shapes on the CUDA simulator, no timing")
    return parser.parse_args()


# ------------------------------------------------------------------------- checks
def relative_error(actual, desired):
    desired = np.asarray(desired, dtype=np.float64)
    diff = np.max(np.abs(np.asarray(actual, dtype=np.float64) - desired), initial=0.0)
    return diff / max(float(np.max(np.abs(desired), initial=0.0)), 1e-30)


def layer_problem(B, T, I, H, D, ragged, with_state, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, I)).astype(dtype)
    lengths = rng.integers(1, T + 1, size=B) if ragged else np.full(B, T)
    if ragged:
        lengths[0], lengths[-1] = T, 1
    scale = 1.0 / np.sqrt(H)
    W_ih = rng.uniform(-scale, scale, (D, 4 * H, I)).astype(dtype)
    W_hh = rng.uniform(-scale, scale, (D, 4 * H, H)).astype(dtype)
    bias = rng.uniform(-scale, scale, (D, 4 * H)).astype(dtype)
    h0 = rng.standard_normal((D, B, H)).astype(dtype) * with_state
    c0 = rng.standard_normal((D, B, H)).astype(dtype) * with_state
    args = (x, lengths.astype(np.int64), W_ih, W_hh, bias, h0, c0)
    grads = tuple(rng.standard_normal(shape).astype(dtype)
                  for shape in ((B, T, D * H), (D, B, H), (D, B, H)))
    return args, grads


def run_layer(backend, args, grads_in):
    x, lengths, W_ih, W_hh, bias, h0, c0 = args
    out, h_n, c_n, cache = backend.forward(*args)
    res = {"out": out, "h_n": h_n, "c_n": c_n}
    res["out(inference)"], res["h_n(inference)"], res["c_n(inference)"] = (
        backend.inference(*args))
    dW_ih, dW_hh, d_bias = np.empty_like(W_ih), np.empty_like(W_hh), np.empty_like(bias)
    res["dx"], res["d_h0"], res["d_c0"] = backend.backward(
        x, lengths, W_ih, W_hh, cache, *grads_in, dW_ih, dW_hh, d_bias)
    res.update(dW_ih=dW_ih, dW_hh=dW_hh, d_bias=d_bias)
    return res


def run_stack(device, dtype, x, lengths, h0, c0, d_out, d_h_n, d_c_n):
    from numlstm import LSTM

    B, T, I = x.shape
    layer = LSTM(I, h0.shape[2], num_layers=2, bidirectional=True, dtype=dtype,
                 random_state=0, device=device)
    out, (h_n, c_n) = layer.forward(x, h0, c0, lengths=lengths)
    grads, dx = layer.backward(d_out, d_h_n, d_c_n)
    return dict(out=out, h_n=h_n, c_n=c_n, dx=dx, **grads)


def compare(label, actual, expected, dtype):
    worst_name, worst = max(((k, relative_error(actual[k], v)) for k, v in expected.items()),
                            key=lambda kv: kv[1])
    ok = worst <= RTOL[dtype] and all(np.all(np.isfinite(v)) for v in actual.values())
    print(f"  {'ok  ' if ok else 'FAIL'} {label:<44} worst {worst:.1e} ({worst_name})",
          flush=True)
    return ok


def run_checks(quick):
    from numlstm.nn.cpu_backend import CPUBackend
    from numlstm.nn.cuda_backend import CUDABackend

    cpu, gpu = CPUBackend(), CUDABackend()
    print(f"checks: CUDA against the CPU kernels (tiling {gpu.tiling})", flush=True)
    ok = True
    for dtype in ("float64", "float32"):
        for i, (B, T, I, H, D, ragged, state) in enumerate(CHECKED_QUICK if quick else CHECKED):
            args, grads_in = layer_problem(B, T, I, H, D, ragged, state, dtype, seed=i)
            label = (f"{dtype} layer B{B} T{T} I{I} H{H} D{D}" + (" ragged" if ragged else "")
                     + (" h0/c0" if state else ""))
            ok &= compare(label, run_layer(gpu, args, grads_in),
                          run_layer(cpu, args, grads_in), dtype)
        rng = np.random.default_rng(11)
        B, T, I, H = (4, 4, 3, 3) if quick else (19, 13, 7, 24)
        data = dict(x=rng.standard_normal((B, T, I)),
                    lengths=rng.integers(1, T + 1, size=B),
                    h0=rng.standard_normal((4, B, H)), c0=rng.standard_normal((4, B, H)),
                    d_out=rng.standard_normal((B, T, 2 * H)),
                    d_h_n=rng.standard_normal((4, B, H)),
                    d_c_n=rng.standard_normal((4, B, H)))
        ok &= compare(f"{dtype} LSTM 2-layer bidir B{B} T{T} I{I} H{H} ragged",
                      run_stack("cuda", dtype, **data), run_stack("cpu", dtype, **data), dtype)
    return ok


# ------------------------------------------------------------------------ timings
def median_time(fn, sync, min_repeats, budget_s):
    """Median wall time of ``fn`` (ms) after one warm-up call, syncing after each call."""
    fn()
    sync()
    times = []
    start = time.perf_counter()
    while len(times) < min_repeats or (time.perf_counter() - start < budget_s
                                       and len(times) < 50):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


class DeviceStack:
    """A numlstm LSTM's weights on the device, run by the CUDA driver functions directly."""

    def __init__(self, layer, x, d_out):
        from numba import cuda

        from numlstm.nn import cuda_backend as gpu_lstm

        self.cuda, self.gpu = cuda, gpu_lstm
        self.kern = gpu_lstm._kernels(layer.dtype.name, *gpu_lstm.default_tiling())
        params = layer.parameters()
        sfx = [""] + (["_reverse"] if layer.bidirectional else [])
        self.weights = []
        for k in range(layer.num_layers):
            def stack(name):
                return cuda.to_device(np.stack([params[f"{name}_l{k}{s}"] for s in sfx]))
            bias = np.stack([params[f"bias_ih_l{k}{s}"] + params[f"bias_hh_l{k}{s}"]
                             for s in sfx])
            self.weights.append((stack("weight_ih"), stack("weight_hh"),
                                 cuda.to_device(bias)))
        B, T, _ = x.shape
        self.state_shape = (layer.num_directions, B, layer.hidden_size)
        self.x = cuda.to_device(x)
        self.lengths = cuda.to_device(np.full(B, T, dtype=np.int64))
        self.zeros = cuda.to_device(np.zeros(self.state_shape, layer.dtype))
        self.d_out = cuda.to_device(d_out)

    def forward(self, store):
        inp, caches = self.x, []
        for W_ih, W_hh, bias in self.weights:
            inp, _, _, cache = self.gpu._forward_on_device(
                self.kern, inp, self.lengths, W_ih, W_hh, bias, self.zeros, self.zeros,
                store)
            caches.append(cache)
        return caches

    def train_step(self):
        caches = self.forward(True)
        grad = self.d_out
        for (W_ih, W_hh, _), cache in zip(reversed(self.weights), reversed(caches)):
            d_c = self.cuda.device_array(self.state_shape, self.x.dtype)
            d_c.copy_to_device(self.zeros)
            grad = self.gpu._backward_on_device(self.kern, W_ih, W_hh, cache, grad,
                                                self.zeros, d_c)[0]


def breakdown(cfg, quick):
    """Where the device time of one float32 layer goes, per-step launches against one
    cooperative launch per sweep, and the host cost of one kernel launch."""
    from numba import cuda

    from numlstm import LSTM
    from numlstm.nn import cuda_backend as g

    B, T, I, H, _, _ = cfg
    layer = LSTM(I, H, dtype=np.float32, random_state=0, device="cuda")
    rng = np.random.default_rng(0)
    stack = DeviceStack(layer, rng.standard_normal((B, T, I)).astype(np.float32),
                        np.ones((B, T, H), np.float32))
    kern = stack.kern
    W_ih, W_hh, bias = stack.weights[0]
    gates = cuda.device_array((B, T, 1, 4 * H), np.float32)
    d_c = cuda.device_array((1, B, H), np.float32)
    reps, budget = (1, 0.0) if quick else (5, 0.5)
    sync = cuda.synchronize

    def projection():
        g._matmul(kern, B * T, 4 * H, I, g._Mat(g._flat(stack.x), I),
                  g._Mat(g._flat(W_ih), I, trans=True), g._Mat(g._flat(gates), 4 * H))

    def forward(persistent):
        return g._forward_on_device(kern, stack.x, stack.lengths, W_ih, W_hh, bias,
                                    stack.zeros, stack.zeros, True, persistent)

    times = {"input projection": median_time(projection, sync, reps, budget)}
    for persistent in (False, True):
        tag = "one launch" if persistent else "per step"
        cache = forward(persistent)[3]
        times[f"forward ({tag})"] = median_time(lambda: forward(persistent), sync, reps,
                                                budget)
        times[f"backward ({tag})"] = median_time(
            lambda: g._backward_on_device(kern, W_ih, W_hh, cache, stack.d_out, stack.zeros,
                                          d_c, persistent), sync, reps, budget)
    fwd_grid, block, bwd_grid, _ = g._step_grids(kern, B, H, 1)
    tiny_step = g._configured(kern.forward_steps, (1, 1, 1), block)
    one = cuda.to_device(np.ones(1, np.int64))
    args = (False, one, cuda.device_array((1, 4, 1), np.float32),
            cuda.device_array((1, 4), np.float32),
            cuda.device_array((2, 1, 1, 1), np.float32),
            cuda.device_array((2, 1, 1, 1), np.float32),
            cuda.device_array((1, 1, 1, 4), np.float32),
            cuda.device_array((1, 1, 1), np.float32),
            cuda.device_array((1, 1, 1, 1), np.float32),
            cuda.device_array((1, 1, 1, 1), np.float32))
    n = 3 if quick else 500

    def launches():
        for _ in range(n):
            tiny_step(0, *args)

    per_launch = 1e3 * median_time(launches, sync, 3, 0.0) / n
    flops = 2.0 * B * T * 4 * H * (I + H)
    best = min(times["forward (per step)"], times["forward (one launch)"])
    print(f"  breakdown ({B},{T},{I},{H}) float32 one layer, ms; step grids forward "
          f"{fwd_grid} backward {bwd_grid} of {block} threads:\n    "
          + ", ".join(f"{k} {v:.2f}" for k, v in times.items())
          + f"\n    forward {flops / best / 1e9:.2f} TFLOP/s; host cost of one kernel launch "
          f"{per_launch:.1f} us"
          + (f"; cooperative launches unavailable: {g._cooperative_problem[0]}"
             if g._cooperative_problem else ""), flush=True)


def torch_cuda():
    try:
        import torch
    except ImportError as exc:
        return None, f"torch is not importable ({exc})"
    if not torch.cuda.is_available():
        return None, f"torch {torch.__version__} sees no CUDA device"
    return torch, None


def torch_timings(torch, cfg, tf32):
    B, T, I, H, L, bidir = cfg
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    dev = torch.device("cuda")
    lstm = torch.nn.LSTM(I, H, num_layers=L, bidirectional=bidir, batch_first=True).to(dev)
    x = torch.randn(B, T, I, device=dev, requires_grad=True)
    d_out = torch.ones(B, T, (2 if bidir else 1) * H, device=dev)
    sync = torch.cuda.synchronize

    def forward():
        with torch.no_grad():
            lstm(x)

    def train():
        lstm.zero_grad(set_to_none=True)
        x.grad = None
        out, _ = lstm(x)
        out.backward(d_out)

    reps, budget = (5, 1.0)
    return median_time(forward, sync, reps, budget), median_time(train, sync, reps, budget)


def run_timings(quick):
    from numba import cuda

    from numlstm import LSTM

    torch, why_not = (None, "simulator run") if quick else torch_cuda()
    if torch is None:
        print(f"timings: cuDNN not timed ({why_not}); numlstm only", flush=True)
    else:
        print(f"timings: float32, torch {torch.__version__}, cuDNN "
              f"{torch.backends.cudnn.version()}; ms, median after warm-up", flush=True)
    configs = [(4, 3, 2, 3, 2, True)] if quick else TIMED
    reps, budget = (1, 0.0) if quick else (5, 1.0)
    sync = cuda.synchronize
    rows = []
    for cfg in configs:
        B, T, I, H, L, bidir = cfg
        t_cfg = time.perf_counter()
        rng = np.random.default_rng(0)
        layer = LSTM(I, H, num_layers=L, bidirectional=bidir, dtype=np.float32,
                     random_state=0, device="cuda")
        x = rng.standard_normal((B, T, I)).astype(np.float32)
        d_out = np.ones((B, T, layer.num_directions * H), np.float32)
        stack = DeviceStack(layer, x, d_out)

        def api_train():
            layer.forward(x)
            layer.backward(d_out)

        row = {
            "api_fwd": median_time(lambda: layer.forward(x, requires_grad=False), sync,
                                   reps, budget),
            "api_train": median_time(api_train, sync, reps, budget),
            "dev_fwd": median_time(lambda: stack.forward(False), sync, reps, budget),
            "dev_train": median_time(stack.train_step, sync, reps, budget),
        }
        if torch is not None:
            row["cudnn_fwd"], row["cudnn_train"] = torch_timings(torch, cfg, tf32=True)
            row["fp32_fwd"], row["fp32_train"] = torch_timings(torch, cfg, tf32=False)
        rows.append((cfg, row))
        print_row(cfg, row, time.perf_counter() - t_cfg)
    for cfg in (configs[0], configs[-1]) if not quick else configs:
        breakdown(cfg, quick)
    return rows


def print_row(cfg, row, seconds):
    B, T, I, H, L, bidir = cfg
    name = f"({B},{T},{I},{H})" + (f" {L}-layer" if L > 1 else "") + (" bidir" if bidir else "")
    print(f"  {name}  [{seconds:.0f} s]", flush=True)
    for what in ("fwd", "train"):
        line = (f"    {'forward' if what == 'fwd' else 'train  '}: numlstm "
                f"{row['dev_' + what]:8.2f} (API {row['api_' + what]:8.2f})")
        if "cudnn_" + what in row:
            cudnn, fp32 = row["cudnn_" + what], row["fp32_" + what]
            line += (f" | cuDNN {cudnn:7.2f} (FP32 {fp32:7.2f}) | numlstm/cuDNN "
                     f"{row['dev_' + what] / cudnn:5.1f}x (API {row['api_' + what] / cudnn:5.1f}x,"
                     f" vs FP32 {row['dev_' + what] / fp32:5.1f}x)")
        print(line, flush=True)


# --------------------------------------------------------------------------- main
def fit_timings(quick):
    """Seconds per epoch of an estimator fit with ``device="cuda"`` (data, weights and
    optimizer state on the GPU for the whole fit) and with ``device="cpu"``, same model."""
    from numlstm import LSTMRegressor

    n, T, I, H, batch = (32, 4, 2, 3, 16) if quick else (4096, 100, 32, 256, 256)
    epochs = 1 if quick else 3
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, T, I)).astype(np.float32)
    y = X[:, :, 0].sum(axis=1)
    print(f"fit: LSTMRegressor, {n} sequences of {T} steps, I={I}, H={H}, batch {batch}, "
          f"{epochs} epoch(s), float32", flush=True)
    per_epoch = {}
    for device in ("cuda", "cpu"):
        def fit():
            with warnings.catch_warnings():  # a few epochs do not converge, by design
                warnings.simplefilter("ignore")
                LSTMRegressor(hidden_size=H, batch_size=batch, max_iter=epochs, device=device,
                              early_stopping=False, n_iter_no_change=epochs + 1, tol=0.0,
                              random_state=0).fit(X, y)

        fit()  # compile and warm up
        start = time.perf_counter()
        fit()
        per_epoch[device] = (time.perf_counter() - start) / epochs
        print(f"  {device}: {per_epoch[device] * 1e3:.1f} ms per epoch", flush=True)
    print(f"  cpu/cuda: {per_epoch['cpu'] / per_epoch['cuda']:.2f}", flush=True)


def main():
    args = parse_args()
    if args.quick:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    sys.path.insert(0, _ROOT)
    if not hasattr(np, "row_stack"):  # NumPy >= 2.5 with numba-cuda 0.30 (see above)
        np.row_stack = np.vstack
    t0 = time.perf_counter()
    import numba
    from numba import cuda

    from numlstm._utils.cuda_support import why_unavailable
    from numlstm.nn.cuda_backend import _simulator_active

    problem = why_unavailable()
    if problem or (_simulator_active() and not args.quick):
        print(f"no usable GPU: {problem or 'NUMBA_ENABLE_CUDASIM is set'}; "
              "run with --quick to try the script on the simulator")
        return 2
    if args.quick:
        print("CUDA simulator (--quick): tiny shapes, timings are not measurements")
    else:
        dev = cuda.get_current_device()
        print(f"GPU: {dev.name.decode() if isinstance(dev.name, bytes) else dev.name}, "
              f"compute capability {dev.compute_capability}")
    try:
        import numba_cuda
        cuda_version = getattr(numba_cuda, "__version__", "?")
    except ImportError:
        cuda_version = "?"
    print(f"numba {numba.__version__}, numba-cuda {cuda_version}, numpy {np.__version__}",
          flush=True)
    ok = run_checks(args.quick)
    print(f"checks {'passed' if ok else 'FAILED'} [{time.perf_counter() - t0:.0f} s]",
          flush=True)
    run_timings(args.quick)
    fit_timings(args.quick)
    print(f"total {time.perf_counter() - t0:.0f} s; checks {'passed' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
