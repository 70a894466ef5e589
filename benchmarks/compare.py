"""Side-by-side timing of numlstm.LSTM and PyTorch's CPU torch.nn.LSTM.

Run from the repository root::

    python benchmarks/compare.py                 # the five configurations of the issue
    python benchmarks/compare.py --quick         # tiny sizes, a few seconds: CI smoke test
    python benchmarks/compare.py --configs 1 4 --repeats 25 --markdown

Both libraries run in this one process, in float32, with the same number of threads
(``torch.set_num_threads(numba.get_num_threads())``) and the same weights (numlstm's
``state_dict()`` loaded into torch). Before any timing, outputs and gradients are checked
to agree (``--tolerance``, default 1e-4); a mismatch stops the script with exit status 1.

* forward = inference: numlstm ``forward(x, requires_grad=False)``, torch under
  ``torch.no_grad()``.
* training step = forward + backward of ``out.sum()`` with the input gradient included:
  numlstm ``forward(x)`` + ``backward(ones)``, torch ``out.sum().backward()`` on an input
  that requires grad (no optimizer step for either).

Each timing is the median (``--stat min``: the minimum) of ``--repeats`` samples taken
after ``--warmup`` calls; the measurements of a configuration are interleaved sample by
sample so that load from other processes hits both libraries alike. A sample repeats the
call enough times to last ~20 ms. Each sample starts with a pause of ``SETTLE_SECONDS``
and one untimed call: PyTorch, numba and ONNX Runtime each keep their own pool of worker
threads, and a pool spins on a core for several milliseconds after each call (measured
here: 5-8 ms of CPU after a call of either library). A sample taken right after another
library's shares the cores with its spinning workers; measured that way, numlstm's 2-layer
bidirectional training step took 10.0-10.5 ms against 8.3-8.9 ms run on its own. The pause
and the untimed call time each library as it runs when it is the only one working.

FLOPs follow ``shared/reference/anchors.md``: the forward pass counts
``2 * B * T * 4H * (I_k + H)`` per layer and direction (``I_k`` = input size of layer k),
a training step three times that. numlstm's GFLOP/s is shown as a fraction of the machine's
float32 matrix-product rate, measured in this run with numpy's ``matmul`` of the comparable
shape ``(B x (I+H)) @ ((I+H) x 4H)`` (first layer's sizes) under the same thread count,
timed just before the LSTMs of that configuration. The machine's peak rate (1024^3) is
printed above the table. Other processes on the machine skew every number: the load
average before and after the run is printed with the results.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.compare
    import _onnx_reference
except ImportError:
    from . import _onnx_reference


@dataclass(frozen=True)
class Config:
    batch: int
    steps: int
    inputs: int
    hidden: int
    layers: int = 1
    bidirectional: bool = False

    @property
    def directions(self):
        return 2 if self.bidirectional else 1

    @property
    def label(self):
        text = f"{self.batch},{self.steps},{self.inputs},{self.hidden}"
        if self.layers > 1:
            text += f" {self.layers}L"
        if self.bidirectional:
            text += " bi"
        return text

    def forward_flops(self):
        """2·B·T·4H·(I_k + H) summed over layers and directions."""
        total = 0
        for k in range(self.layers):
            n_in = self.inputs if k == 0 else self.directions * self.hidden
            total += self.directions * 2 * self.batch * self.steps * 4 * self.hidden * (
                n_in + self.hidden)
        return total


#: (batch, time, input, hidden[, layers, bidirectional]) of the issue's targets.
CONFIGS = [
    Config(32, 50, 8, 32),
    Config(64, 100, 32, 128),
    Config(64, 100, 64, 256),
    Config(128, 50, 128, 512),
    Config(32, 50, 16, 64, layers=2, bidirectional=True),
]

#: Tiny sizes for a smoke test: every code path, a few seconds.
QUICK_CONFIGS = [
    Config(8, 10, 4, 8),
    Config(4, 6, 3, 5, layers=2, bidirectional=True),
]

#: Streaming / online inference: one sequence (or two) at a time, short and long calls.
LATENCY_CONFIGS = [Config(batch, steps, 8, 64) for batch in (1, 2) for steps in (1, 10, 200)]
QUICK_LATENCY_CONFIGS = [Config(1, 1, 3, 5), Config(2, 10, 3, 5)]

SAMPLE_SECONDS = 0.02  # a sample repeats the call until it lasts about this long
#: Pause before each sample: longer than the worker threads of the library timed before
#: keep spinning after its call (see the module docstring).
SETTLE_SECONDS = 0.03
MAX_INNER = 100


def _import_numlstm():
    try:
        import numlstm
    except ImportError:  # run from a checkout where numlstm is not installed
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        import numlstm
    return numlstm


def parse_config(text):
    """``"3"`` = the 3rd default configuration; ``"B,T,I,H[,layers[,bi]]"`` = a custom one."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) == 1:
        index = int(parts[0])
        if not 1 <= index <= len(CONFIGS):
            raise argparse.ArgumentTypeError(f"config index must be in 1..{len(CONFIGS)}")
        return CONFIGS[index - 1]
    if len(parts) not in (4, 5, 6):
        raise argparse.ArgumentTypeError(
            f"config {text!r}: expected an index or B,T,I,H[,layers[,bi]]")
    numbers = [int(p) for p in parts[:5]]
    bidirectional = len(parts) == 6 and parts[5].lower() in ("1", "bi", "true", "yes")
    return Config(*numbers, bidirectional=bidirectional)


def parse_args(argv=None):
    listing = "\n".join(f"  {i}: {c.label}" for i, c in enumerate(CONFIGS, 1))
    parser = argparse.ArgumentParser(
        description="Time numlstm.LSTM against torch.nn.LSTM on the CPU (float32).",
        epilog=f"default configurations (B,T,I,H):\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", type=parse_config, metavar="CONFIG",
                        help="indices of the default configurations (1-based) or custom "
                             "B,T,I,H[,layers[,bi]] tuples")
    parser.add_argument("--repeats", type=int, default=15,
                        help="timed samples per measurement (default 15)")
    parser.add_argument("--stat", choices=("median", "min"), default="median",
                        help="statistic of the samples (default median; min is steadier "
                             "on a machine shared with other work)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed calls before timing (default 3)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both libraries (default numba's, i.e. all cores)")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest allowed difference between the libraries, relative "
                             "to the largest magnitude of each compared array (default 1e-4)")
    parser.add_argument("--clock", choices=("wall", "thread"), default="wall",
                        help="wall-clock time (default), or the CPU time of the calling "
                             "thread: with --threads 1 every library computes on that "
                             "thread, so this measures per-core efficiency and stays steady "
                             "while other processes load the machine")
    parser.add_argument("--quick", action="store_true",
                        help="tiny configurations and 3 repeats: a smoke test for CI")
    parser.add_argument("--no-latency", dest="latency", action="store_false",
                        help="skip the batch-1/batch-2 latency table")
    parser.add_argument("--markdown", action="store_true",
                        help="print the table (and the setup) as markdown")
    args = parser.parse_args(argv)
    if args.quick:
        args.configs = args.configs or QUICK_CONFIGS
        args.repeats = min(args.repeats, 3)
        args.warmup = min(args.warmup, 1)
    args.configs = args.configs or CONFIGS
    args.latency_configs = QUICK_LATENCY_CONFIGS if args.quick else LATENCY_CONFIGS
    if args.clock == "thread" and args.threads != 1:
        parser.error("--clock thread needs --threads 1 (other threads' work is not counted)")
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    return args


# ----------------------------------------------------------------------------- timing
#: The clock of every sample: time.perf_counter, or time.thread_time (see --clock).
_clock = time.perf_counter


def _calibrate(fn):
    """How many calls make one sample last about SAMPLE_SECONDS."""
    start = _clock()
    fn()
    elapsed = _clock() - start
    return max(1, min(MAX_INNER, int(SAMPLE_SECONDS / max(elapsed, 1e-9))))


def _sample(fn, number):
    time.sleep(SETTLE_SECONDS)  # the previous library's workers stop spinning
    fn()  # this library's workers wake up
    start = _clock()
    for _ in range(number):
        fn()
    return (_clock() - start) / number


#: Longer than OpenBLAS's worker threads spin after a call.
_BLAS_SPIN_SECONDS = 0.3


def sample_interleaved(functions, repeats, warmup):
    """``repeats`` samples (seconds per call) of each function, sampling them in turn.

    Sample ``r`` of every function is taken in the same round, so ratios of paired
    samples cancel slow drifts of the machine's speed.
    """
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    numbers = {name: _calibrate(fn) for name, fn in functions.items()}
    samples = {name: [] for name in functions}
    for r in range(repeats):
        names = list(functions)
        if r % 2:  # alternate the order so neither library always runs first
            names.reverse()
        for name in names:
            samples[name].append(_sample(functions[name], numbers[name]))
    return samples


def _reduce(values, stat):
    return statistics.median(values) if stat == "median" else min(values)


def measure_interleaved(functions, repeats, warmup, stat="median"):
    """Median (or min) seconds per call of each function, sampling them in turn."""
    samples = sample_interleaved(functions, repeats, warmup)
    return {name: _reduce(values, stat) for name, values in samples.items()}


@dataclass(frozen=True)
class Ratio:
    """A speed ratio ``theirs / ours`` with the spread of its paired samples."""

    value: float
    low: float   # 25th percentile of the paired ratios
    high: float  # 75th percentile

    @classmethod
    def of(cls, theirs, ours, stat="median"):
        paired = [t / o for t, o in zip(theirs, ours)]
        # The median of the paired ratios, so that it lies inside the range printed
        # beside it; with --stat min, the ratio of the fastest samples.
        value = (statistics.median(paired) if stat == "median"
                 else min(theirs) / min(ours))
        low, high = np.percentile(paired, [25, 75])
        return cls(value, float(low), float(high))

    def __format__(self, spec):
        return f"{self.value:.2f} [{self.low:.2f}-{self.high:.2f}]"


def gemm_call(m, k, n):
    """A float32 numpy ``(m x k) @ (k x n)`` call and its FLOP count."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = np.empty((m, n), dtype=np.float32)
    return (lambda: np.matmul(a, b, out=c)), 2.0 * m * k * n


def gemm_gflops(m, k, n, repeats, warmup, stat="median"):
    """float32 GFLOP/s of numpy's ``(m x k) @ (k x n)``."""
    call, flops = gemm_call(m, k, n)
    return flops / measure_interleaved({"gemm": call}, repeats, warmup, stat)["gemm"] / 1e9


# ------------------------------------------------------------------------ the models
def build_pair(numlstm, torch, config):
    layer = numlstm.LSTM(config.inputs, config.hidden, num_layers=config.layers,
                         bidirectional=config.bidirectional, dtype=np.float32,
                         random_state=0)
    model = torch.nn.LSTM(config.inputs, config.hidden, num_layers=config.layers,
                          bidirectional=config.bidirectional, batch_first=True)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    return layer, model


def _relative_error(ours, theirs):
    theirs = np.asarray(theirs, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(theirs))))
    return float(np.max(np.abs(np.asarray(ours, dtype=np.float64) - theirs))) / scale


def check_agreement(layer, model, torch, x, tolerance):
    """Largest relative difference in outputs and gradients; raises if above tolerance."""
    errors = {}
    out, (h_n, c_n) = layer.forward(x, requires_grad=False)
    with torch.no_grad():
        t_out, (t_h, t_c) = model(torch.from_numpy(x))
    errors["inference out"] = _relative_error(out, t_out.numpy())
    errors["inference h_n"] = _relative_error(h_n, t_h.numpy())
    errors["inference c_n"] = _relative_error(c_n, t_c.numpy())

    out, _ = layer.forward(x)
    grads, dx = layer.backward(np.ones_like(out))
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    model.zero_grad(set_to_none=True)
    t_out, _ = model(xt)
    t_out.sum().backward()
    errors["train out"] = _relative_error(out, t_out.detach().numpy())
    errors["dx"] = _relative_error(dx, xt.grad.numpy())
    for name, param in model.named_parameters():
        errors[name] = _relative_error(grads[name], param.grad.numpy())
    worst = max(errors, key=errors.get)
    if errors[worst] > tolerance:
        details = ", ".join(f"{k}={v:.1e}" for k, v in errors.items())
        raise AssertionError(f"numlstm and torch disagree: worst {worst} = "
                             f"{errors[worst]:.2e} > {tolerance:g} ({details})")
    return errors[worst]


def onnx_session(layer, config, n_threads, x, tolerance):
    """ONNX Runtime's twin of ``layer`` (None when not installed), checked to agree on ``x``."""
    if _onnx_reference.unavailable_reason() is not None:
        return None
    session = _onnx_reference.inference_session(layer, n_threads)
    error = _relative_error(session.run(None, {"x": x})[0],
                            layer.forward(x, requires_grad=False)[0])
    if error > tolerance:
        raise AssertionError(f"numlstm and ONNX Runtime disagree: {error:.2e} > {tolerance:g}")
    return session


def run_config(numlstm, torch, config, args, n_threads):
    layer, model = build_pair(numlstm, torch, config)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((config.batch, config.steps, config.inputs), dtype=np.float32)
    max_error = check_agreement(layer, model, torch, x, args.tolerance)
    session = onnx_session(layer, config, n_threads, x, args.tolerance)

    ones = np.ones((config.batch, config.steps, config.directions * config.hidden),
                   dtype=np.float32)
    x_torch = torch.from_numpy(x)
    x_train = torch.from_numpy(x.copy()).requires_grad_(True)

    def numlstm_forward():
        layer.forward(x, requires_grad=False)

    def torch_forward():
        with torch.no_grad():
            model(x_torch)

    def numlstm_train():
        layer.forward(x)
        layer.backward(ones)

    def torch_train():
        model.zero_grad(set_to_none=True)
        x_train.grad = None
        out, _ = model(x_train)
        out.sum().backward()

    functions = {"nl_fwd": numlstm_forward, "torch_fwd": torch_forward,
                 "nl_train": numlstm_train, "torch_train": torch_train}
    if session is not None:
        functions["ort_fwd"] = lambda: session.run(None, {"x": x})

    # The matrix product is timed apart, before the libraries: numpy's OpenBLAS workers
    # keep spinning for up to ~0.1 s after a call, and sampled in the same loop they took
    # a core from whichever library ran next (measured: up to 1.6x slower samples).
    gemm, gemm_flops = gemm_call(config.batch, config.inputs + config.hidden,
                                 4 * config.hidden)
    gemm_time = measure_interleaved({"gemm": gemm}, args.repeats, args.warmup,
                                    args.stat)["gemm"]
    time.sleep(_BLAS_SPIN_SECONDS)
    samples = sample_interleaved(functions, args.repeats, args.warmup)
    times = {name: _reduce(values, args.stat) for name, values in samples.items()}
    flops = config.forward_flops()
    row = {
        "config": config.label,
        "nl_fwd": times["nl_fwd"], "torch_fwd": times["torch_fwd"],
        "ort_fwd": times.get("ort_fwd"),
        "nl_train": times["nl_train"], "torch_train": times["torch_train"],
        "fwd_ratio": Ratio.of(samples["torch_fwd"], samples["nl_fwd"], args.stat),
        "train_ratio": Ratio.of(samples["torch_train"], samples["nl_train"], args.stat),
        "ort_ratio": (Ratio.of(samples["ort_fwd"], samples["nl_fwd"], args.stat)
                      if session is not None else None),
        "fwd_gflops": flops / times["nl_fwd"] / 1e9,
        "train_gflops": 3 * flops / times["nl_train"] / 1e9,
        "gemm_gflops": gemm_flops / gemm_time / 1e9,
        "gemm_flops": gemm_flops,
        "max_error": max_error,
    }
    row["fwd_pct"] = 100 * row["fwd_gflops"] / row["gemm_gflops"]
    row["train_pct"] = 100 * row["train_gflops"] / row["gemm_gflops"]
    return row


def run_latency(numlstm, torch, config, args, n_threads):
    """Inference latency of one small call (streaming use): numlstm, torch, ONNX Runtime."""
    layer, model = build_pair(numlstm, torch, config)
    x = np.random.default_rng(1).standard_normal(
        (config.batch, config.steps, config.inputs), dtype=np.float32)
    check_agreement(layer, model, torch, x, args.tolerance)
    session = onnx_session(layer, config, n_threads, x, args.tolerance)
    x_torch = torch.from_numpy(x)

    def torch_forward():
        with torch.no_grad():
            model(x_torch)

    # A stream call runs the same steps, carrying its state to the next call (online use);
    # its state drifts from call to call, the arithmetic does not.
    stream = layer.stream(batch_size=config.batch)
    functions = {"nl_fwd": lambda: layer.forward(x, requires_grad=False),
                 "nl_stream": lambda: stream(x),
                 "torch_fwd": torch_forward}
    if session is not None:
        functions["ort_fwd"] = lambda: session.run(None, {"x": x})
    samples = sample_interleaved(functions, args.repeats, args.warmup)
    times = {name: _reduce(values, args.stat) for name, values in samples.items()}
    return {
        "config": config.label,
        "nl_fwd": times["nl_fwd"], "nl_stream": times["nl_stream"],
        "torch_fwd": times["torch_fwd"], "ort_fwd": times.get("ort_fwd"),
        "fwd_ratio": Ratio.of(samples["torch_fwd"], samples["nl_fwd"], args.stat),
        "ort_ratio": (Ratio.of(samples["ort_fwd"], samples["nl_fwd"], args.stat)
                      if session is not None else None),
        "ort_stream_ratio": (Ratio.of(samples["ort_fwd"], samples["nl_stream"], args.stat)
                             if session is not None else None),
    }


# -------------------------------------------------------------------------- reporting
#: (title, key, format) of the throughput table; ratios print "median [25%-75%]" of the
#: paired samples' ratios.
COLUMNS = [
    ("config (B,T,I,H)", "config", "{}"),
    ("numlstm fwd ms", "nl_fwd", "ms"),
    ("torch fwd ms", "torch_fwd", "ms"),
    ("ORT fwd ms", "ort_fwd", "ms"),
    ("fwd torch/numlstm", "fwd_ratio", "{}"),
    ("fwd ORT/numlstm", "ort_ratio", "{}"),
    ("numlstm train ms", "nl_train", "ms"),
    ("torch train ms", "torch_train", "ms"),
    ("train torch/numlstm", "train_ratio", "{}"),
    ("numlstm fwd GFLOP/s", "fwd_gflops", "{:.1f}"),
    ("numlstm train GFLOP/s", "train_gflops", "{:.1f}"),
    ("GEMM GFLOP/s", "gemm_gflops", "{:.1f}"),
    ("fwd % GEMM", "fwd_pct", "{:.0f}%"),
    ("train % GEMM", "train_pct", "{:.0f}%"),
    ("max rel diff vs torch", "max_error", "{:.1e}"),
]

LATENCY_COLUMNS = [
    ("config (B,T,I,H)", "config", "{}"),
    ("numlstm fwd us", "nl_fwd", "us"),
    ("numlstm stream us", "nl_stream", "us"),
    ("torch us", "torch_fwd", "us"),
    ("ORT us", "ort_fwd", "us"),
    ("torch/numlstm fwd", "fwd_ratio", "{}"),
    ("ORT/numlstm fwd", "ort_ratio", "{}"),
    ("ORT/numlstm stream", "ort_stream_ratio", "{}"),
]


def _cells(row, columns):
    cells = []
    for _, key, fmt in columns:
        value = row.get(key)
        if value is None:
            cells.append("-")
        elif fmt == "ms":
            cells.append(f"{value * 1e3:.3g}" if value < 0.01 else f"{value * 1e3:.1f}")
        elif fmt == "us":
            cells.append(f"{value * 1e6:.1f}")
        else:
            cells.append(fmt.format(value))
    return cells


def format_table(rows, markdown, columns=COLUMNS):
    header = [title for title, _, _ in columns]
    body = [_cells(row, columns) for row in rows]
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(h), *(len(cells[i]) for cells in body)) for i, h in enumerate(header)]
    fmt = "  ".join("{:<%d}" % widths[0] if i == 0 else "{:>%d}" % w
                    for i, w in enumerate(widths))
    lines = [fmt.format(*header), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*cells) for cells in body]
    return "\n".join(lines)


def cpu_model():
    """The CPU's model name, as the operating system reports it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _vector_units():
    """The CPU's widest vector extensions and cache sizes, as this kernel reports them."""
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    isa = [name for name in ("avx512f", "avx512_bf16", "amx_tile", "avx2", "fma")
           if name in flags]
    caches = []
    base = "/sys/devices/system/cpu/cpu0/cache"
    for index in sorted(os.listdir(base)) if os.path.isdir(base) else ():
        try:
            with open(f"{base}/{index}/level") as f:
                level = f.read().strip()
            with open(f"{base}/{index}/type") as f:
                kind = f.read().strip()
            with open(f"{base}/{index}/size") as f:
                size = f.read().strip()
        except OSError:
            continue
        if kind != "Instruction":
            caches.append(f"L{level}{'d' if kind == 'Data' else ''} {size}")
    return f"{' '.join(isa) or 'unknown'}; caches {', '.join(caches) or 'unknown'}"


def _load_average():
    try:
        return "/".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "?"


def environment_lines(numlstm, numba, torch, n_threads, peak_gemm, args, load_before):
    from threadpoolctl import threadpool_info

    lines = [
        f"CPU: {cpu_model()}, {os.cpu_count()} logical cores; load average (1/5/15 min) "
        f"{load_before} before, {_load_average()} after (other processes skew timings)",
        f"vector units: {_vector_units()}",
        f"threads: numba {numba.get_num_threads()} (layer {numba.threading_layer()}), "
        f"torch {torch.get_num_threads()}, numpy GEMM {n_threads}",
        f"versions: numlstm {numlstm.__version__}, numba {numba.__version__}, "
        f"numpy {np.__version__}, torch {torch.__version__}, Python {platform.python_version()}",
    ]
    for lib in threadpool_info():
        if lib.get("user_api") != "blas":
            continue
        owner = next((name for name in ("numpy", "scipy", "torch")
                      if f"{os.sep}{name}" in lib["filepath"]), "?")
        lines.append(
            f"BLAS ({owner}{', used by numlstm' if owner == 'scipy' else ''}"
            f"{', used for the GEMM rate' if owner == 'numpy' else ''}): "
            f"{lib['internal_api']} {lib.get('version')}, kernel "
            f"{lib.get('architecture', '?')}, {lib['num_threads']} threads "
            f"[{os.path.basename(lib['filepath'])}]")
    config = torch.__config__.show()
    blas = next((part.split("=", 1)[1] for part in config.replace(",", " ").split()
                 if part.startswith("BLAS_INFO=")), "?")
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")()
    lines.append(f"BLAS (torch): {blas}, mkldnn {torch.backends.mkldnn.is_available()}, "
                 f"CPU capability {capability}")
    openblas_vars = {name: os.environ.get(name, "unset")
                     for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    note = ""
    if any(v != "unset" for v in openblas_vars.values()):
        note = " (set in this environment: OpenBLAS runs the named kernel, not its own pick)"
    lines.append("env: " + ", ".join(f"{k}={v}" for k, v in openblas_vars.items()) + note)
    lines.append(f"peak numpy float32 GEMM: {peak_gemm[1]:.1f} GFLOP/s at "
                 f"{peak_gemm[0]}^3")
    reason = _onnx_reference.unavailable_reason()
    if reason is None:
        import onnxruntime
        lines.append(f"ONNX Runtime {onnxruntime.__version__}: CPU provider, {n_threads} "
                     f"intra-op threads, spinning off, numlstm.to_onnx's graph (opset "
                     f"{_onnx_reference.opset()}, ONNX LSTM operators)")
    else:
        lines.append(reason)
    lines.append("ratios: other library's time / numlstm's (above 1: numlstm faster), "
                 "with the 25%-75% range of the ratios of paired samples in brackets")
    lines.append(f"clock: {'CPU time of the calling thread' if args.clock == 'thread' else 'wall'}")
    lines.append(f"timing: {args.stat} of {args.repeats} samples after {args.warmup} warm-up "
                 f"calls, samples of ~{SAMPLE_SECONDS * 1e3:.0f} ms; outputs and gradients "
                 f"checked to agree within {args.tolerance:g} (relative) first")
    return lines


def main(argv=None):
    args = parse_args(argv)
    numlstm = _import_numlstm()
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    global _clock
    if args.clock == "thread":
        _clock = time.thread_time
    if args.threads is not None:
        numba.set_num_threads(args.threads)
    n_threads = numba.get_num_threads()
    torch.set_num_threads(n_threads)

    load_before = _load_average()
    rows = []
    with threadpool_limits(limits=n_threads, user_api="blas"):
        peak_size = 256 if args.quick else 1024
        peak = (peak_size, gemm_gflops(peak_size, peak_size, peak_size, args.repeats,
                                       args.warmup, args.stat))
        for config in args.configs:
            try:
                rows.append(run_config(numlstm, torch, config, args, n_threads))
            except AssertionError as exc:
                print(f"{config.label}: {exc}", file=sys.stderr)
                return 1
            if not args.markdown:
                print(f"  done {config.label}", file=sys.stderr, flush=True)
        latency_rows = []
        for config in args.latency_configs if args.latency else ():
            try:
                latency_rows.append(run_latency(numlstm, torch, config, args, n_threads))
            except AssertionError as exc:
                print(f"{config.label}: {exc}", file=sys.stderr)
                return 1

    lines = environment_lines(numlstm, numba, torch, n_threads, peak, args, load_before)
    starved = [row["config"] for row in rows  # tiny products are legitimately slow
               if row["gemm_flops"] >= 1e6 and row["gemm_gflops"] < 0.05 * peak[1]]
    if starved:
        # A multi-threaded BLAS call whose second thread waits for a core held by another
        # process takes whole scheduler ticks: rates collapse by 100x. Seen on shared VMs.
        lines.append(f"WARNING: the GEMM reference of {', '.join(starved)} ran below 5% of "
                     f"the peak rate: other processes were competing for the cores; rerun "
                     f"on an idle machine before trusting this table")
    if args.markdown:
        print("\n".join(f"- {line}" for line in lines))
        print()
    else:
        print("\n".join(lines))
        print()
    print(format_table(rows, args.markdown))
    if latency_rows:
        print()
        print("Latency of one inference call (streaming use), microseconds: numlstm's "
              "forward(x, requires_grad=False), and a stream (layer.stream) fed the same "
              "steps on each call:")
        print()
        print(format_table(latency_rows, args.markdown, LATENCY_COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
