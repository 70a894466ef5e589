"""Device-resident training (numlstm.training.device_trainer) against the NumPy training step.

The kernels one by one against their NumPy twins (numlstm.nn.losses, numlstm.training.optimizers,
the dense layer of numlstm.nn.network), then whole estimator fits with device="cuda" against the
same fits on the CPU, the host<->device traffic of a fit, and a fitted GPU estimator pickled and
used where CUDA is unavailable. Shapes are tiny: every GPU thread is a Python thread in the
simulator.
"""

import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from numba import cuda

from numlstm import LSTMClassifier, LSTMRegressor, TrainingDivergedError
from numlstm.training import device_trainer as gt
from numlstm.estimators._base import _read_checkpoint
from numlstm.nn.cuda_backend import _kernels, default_tiling
from numlstm.nn.losses import LOSS_FUNCTIONS
from numlstm.training.optimizers import AdamOptimizer, SGDOptimizer
from numlstm.training.optimizers import clip_grad_norm as host_clip_grad_norm

pytestmark = pytest.mark.cudasim

RTOL = {np.float64: 1e-9, np.float32: 1e-4}
DTYPES = [np.float64, np.float32]


def assert_matches(actual, desired, dtype, name=""):
    """Relative to the largest entry, so entries near zero do not need 1e-9 on their own."""
    desired = np.asarray(desired)
    scale = max(float(np.max(np.abs(desired))), 1e-30)
    np.testing.assert_allclose(actual, desired, rtol=RTOL[dtype], atol=RTOL[dtype] * scale,
                               err_msg=name)


def ok_status():
    status = gt.new_status()
    host = np.zeros(status.shape[0])
    host[gt.STEP_OK] = 1.0
    status.copy_to_device(host)
    return status


# ------------------------------------------------------------------------ kernels
@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_update_matches_numpy(dtype):
    rng = np.random.default_rng(0)
    n = 37
    params = [rng.standard_normal(n).astype(dtype)]
    opt = AdamOptimizer(params, learning_rate_init=0.01)
    d_params = cuda.to_device(params[0])
    d_m, d_v = cuda.to_device(np.zeros(n, dtype)), cuda.to_device(np.zeros(n, dtype))
    status = ok_status()
    twin = AdamOptimizer([params[0].copy()], learning_rate_init=0.01)
    for _ in range(3):
        grads = [rng.standard_normal(n).astype(dtype)]
        opt.update_params(params, grads)
        lr = twin._advance()
        gt.adam_update(d_params, cuda.to_device(grads[0]), d_m, d_v, status, lr, 0.9, 0.999,
                       1e-8)
    assert_matches(d_params.copy_to_host(), params[0], dtype, "params")
    assert_matches(d_m.copy_to_host(), opt.ms[0], dtype, "m")
    assert_matches(d_v.copy_to_host(), opt.vs[0], dtype, "v")


@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_update_matches_numpy(dtype, nesterov):
    rng = np.random.default_rng(1)
    n = 29
    params = [rng.standard_normal(n).astype(dtype)]
    opt = SGDOptimizer(params, learning_rate_init=0.05, momentum=0.8, nesterov=nesterov)
    d_params = cuda.to_device(params[0])
    d_vel = cuda.to_device(np.zeros(n, dtype))
    status = ok_status()
    for _ in range(3):
        grads = [rng.standard_normal(n).astype(dtype)]
        opt.update_params(params, grads)
        gt.sgd_update(d_params, cuda.to_device(grads[0]), d_vel, status, 0.05, 0.8, nesterov)
    assert_matches(d_params.copy_to_host(), params[0], dtype, "params")
    assert_matches(d_vel.copy_to_host(), opt.velocities[0], dtype, "velocity")


def test_updates_skipped_after_a_non_finite_step():
    params = np.arange(5.0)
    d_params = cuda.to_device(params)
    status = gt.new_status()  # STEP_OK is 0
    gt.adam_update(d_params, cuda.to_device(np.ones(5)), cuda.to_device(np.zeros(5)),
                   cuda.to_device(np.zeros(5)), status, 0.1, 0.9, 0.999, 1e-8)
    gt.sgd_update(d_params, cuda.to_device(np.ones(5)), cuda.to_device(np.zeros(5)), status,
                  0.1, 0.9, True)
    np.testing.assert_array_equal(d_params.copy_to_host(), params)


def masked_rows(n_rows, n_steps, lengths):
    return (np.arange(n_rows) % n_steps) < np.repeat(lengths, n_steps)


@pytest.mark.parametrize("sequence", [False, True])
@pytest.mark.parametrize("loss", sorted(LOSS_FUNCTIONS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_and_gradient_match_numpy(dtype, loss, sequence):
    rng = np.random.default_rng(2)
    batch, n_steps = 3, 4
    n_out = 1 if loss == "binary_log_loss" else 3
    n_rows = batch * n_steps if sequence else batch
    lengths = np.array([4, 1, 3]) if sequence else np.full(batch, n_steps)
    raw = (3 * rng.standard_normal((n_rows, n_out))).astype(dtype)
    intercept = rng.standard_normal(n_out).astype(dtype)
    if loss == "squared_error":
        y = rng.standard_normal((n_rows, n_out)).astype(dtype)
    elif loss == "binary_log_loss":
        y = rng.integers(0, 2, (n_rows, 1)).astype(dtype)
    else:
        y = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, n_rows)]
    valid = masked_rows(n_rows, n_steps, lengths) if sequence else np.ones(n_rows, bool)
    expected_loss, expected_grad = LOSS_FUNCTIONS[loss](y[valid], raw[valid] + intercept)
    status = gt.new_status()
    d_raw = cuda.device_array((n_rows, n_out), dtype)
    gt.loss_and_gradient(loss, cuda.to_device(raw), cuda.to_device(intercept),
                         cuda.to_device(y), cuda.to_device(lengths.astype(np.int64)), n_steps,
                         sequence, int(valid.sum()), status,
                         cuda.device_array(n_rows, np.float64), d_raw)
    got = d_raw.copy_to_host()
    assert got.dtype == np.dtype(dtype)
    assert_matches(got[valid], expected_grad, dtype, "d_raw")
    assert np.all(got[~valid] == 0)
    value = status.copy_to_host()[gt._DATA_LOSS]
    np.testing.assert_allclose(value, expected_loss, rtol=RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_head_matches_numpy(dtype):
    rng = np.random.default_rng(3)
    n_rows, width, n_out = 7, 5, 3
    feats = rng.standard_normal((n_rows, width)).astype(dtype)
    coef = rng.standard_normal((width, n_out)).astype(dtype)
    d_raw = rng.standard_normal((n_rows, n_out)).astype(dtype)
    kern = _kernels(np.dtype(dtype).name, *default_tiling())
    raw = cuda.device_array((n_rows, n_out), dtype)
    gt.head_forward(kern, cuda.to_device(feats), cuda.to_device(coef), raw)
    assert_matches(raw.copy_to_host(), feats @ coef, dtype, "raw")
    coef_grad = cuda.device_array((width, n_out), dtype)
    intercept_grad = cuda.device_array(n_out, dtype)
    d_feats = cuda.device_array((n_rows, width), dtype)
    gt.head_backward(kern, cuda.to_device(feats), cuda.to_device(d_raw), cuda.to_device(coef),
                     coef_grad, intercept_grad, d_feats)
    assert_matches(coef_grad.copy_to_host(), feats.T @ d_raw, dtype, "coef_grad")
    assert_matches(intercept_grad.copy_to_host(), d_raw.sum(axis=0), dtype, "intercept_grad")
    assert_matches(d_feats.copy_to_host(), d_raw @ coef.T, dtype, "d_feats")


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_penalty_norm_and_clipping_match_numpy(dtype, max_norm):
    rng = np.random.default_rng(4)
    grads = rng.standard_normal(41).astype(dtype)
    mask = rng.random(41) < 0.5
    status = gt.new_status()
    d_grads = cuda.to_device(grads)
    gt.sum_of_squares(d_grads, status, gt._SQUARES, cuda.to_device(mask.astype(np.uint8)))
    gt.sum_of_squares(d_grads, status, gt._GRAD_SQUARES)
    gt._configured(gt._finish_loss, 1, 1)(status, 0.0, 1.0, False)
    gt.clip_grad_norm(d_grads, status, max_norm)
    values = status.copy_to_host()
    g64 = grads.astype(np.float64)
    np.testing.assert_allclose(values[gt._SQUARES], np.sum(g64[mask] ** 2), rtol=1e-12)
    expected = grads.copy()
    norm = host_clip_grad_norm([expected], max_norm)
    np.testing.assert_allclose(values[gt.GRAD_NORM], norm, rtol=1e-12)
    assert values[gt.STEP_OK] == 1.0
    assert_matches(d_grads.copy_to_host(), expected, dtype, "clipped")
    assert np.linalg.norm(d_grads.copy_to_host().astype(np.float64)) <= max_norm


# ---------------------------------------------------------------- whole fits
def ragged(rng, n, n_steps, n_features):
    lengths = rng.integers(1, n_steps + 1, n)
    lengths[0] = n_steps
    return [rng.standard_normal((int(t), n_features)) for t in lengths], lengths


def fit_twins(make, X, y, partial=0):
    """The same estimator fitted on the CPU and with device="cuda" (then ``partial``
    further partial_fit calls)."""
    fitted = []
    for device in ("cpu", "cuda"):
        est = make(device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning after two epochs
            est.fit(X, y)
            for _ in range(partial):
                est.partial_fit(X, y)
        fitted.append(est)
    return fitted


def assert_same_fit(cpu, gpu, dtype):
    assert gpu.network_.lstm.device == "cuda"
    assert len(gpu.loss_curve_) == len(cpu.loss_curve_)
    np.testing.assert_allclose(gpu.loss_curve_, cpu.loss_curve_, rtol=RTOL[dtype])
    for name, a, b in (("flat", gpu.network_.get_flat_params(), cpu.network_.get_flat_params()),
                       ("grads", gpu.network_.get_flat_grads(), cpu.network_.get_flat_grads())):
        assert type(a) is np.ndarray and a.dtype == np.dtype(dtype)
        assert_matches(a, b, dtype, name)
    moments = {"ms", "vs", "velocities"} & set(vars(cpu._optimizer))
    for name in moments:
        assert_matches(np.concatenate([m.ravel() for m in getattr(gpu._optimizer, name)]),
                       np.concatenate([m.ravel() for m in getattr(cpu._optimizer, name)]),
                       dtype, name)
    if hasattr(cpu._optimizer, "t"):
        assert gpu._optimizer.t == cpu._optimizer.t


def test_lstm_regressor_two_layers_bidirectional_ragged_checkpointed(tmp_path):
    rng = np.random.default_rng(10)
    X, _ = ragged(rng, 6, 3, 2)
    y = rng.standard_normal(6)

    def make(device):
        return LSTMRegressor(hidden_size=3, num_layers=2, bidirectional=True, batch_size=3,
                             max_iter=2, dtype="float64", random_state=0, device=device,
                             checkpoint=tmp_path / f"{device}.ckpt")

    cpu, gpu = fit_twins(make, X, y)
    assert cpu.network_.output_dropout == 0.1  # "auto": the masks come from one stream
    assert_same_fit(cpu, gpu, np.float64)
    # The checkpoint of the GPU fit holds host arrays: its best-epoch weights too.
    saved = [_read_checkpoint(tmp_path / f"{d}.ckpt")["state"] for d in ("cpu", "cuda")]
    best_cpu, best_gpu = (s["_fit_state"]["best_params"] for s in saved)
    assert type(best_gpu) is np.ndarray
    assert_matches(best_gpu, best_cpu, np.float64, "best_params")
    assert_matches(saved[1]["network_"].get_flat_params(),
                   saved[0]["network_"].get_flat_params(), np.float64, "checkpoint weights")


def test_gru_binary_classifier_bidirectional_sgd_clipped_early_stopping():
    rng = np.random.default_rng(11)
    X, _ = ragged(rng, 6, 3, 2)
    y = np.array(["a", "b", "a", "b", "b", "a"])

    def make(device):
        return LSTMClassifier(cell="gru", hidden_size=3, bidirectional=True, batch_size=3,
                              max_iter=2, solver="sgd", learning_rate_init=0.1,
                              clip_grad_norm=0.05, early_stopping=True, dtype="float64",
                              random_state=0, device=device)

    cpu, gpu = fit_twins(make, X, y)
    assert_same_fit(cpu, gpu, np.float64)
    np.testing.assert_allclose(gpu.validation_scores_, cpu.validation_scores_)
    np.testing.assert_array_equal(gpu.predict(X), cpu.predict(X))


def test_rnn_multiclass_two_layers_then_partial_fit():
    rng = np.random.default_rng(12)
    X = rng.standard_normal((6, 3, 2))
    y = np.array([0, 1, 2, 0, 1, 2])

    def make(device):
        return LSTMClassifier(cell="rnn", hidden_size=3, num_layers=2, batch_size=3,
                              max_iter=1, solver="sgd", nesterovs_momentum=False, alpha=0.0,
                              clip_grad_norm=None, dtype="float64", random_state=0,
                              device=device)

    cpu, gpu = fit_twins(make, X, y, partial=1)
    assert_same_fit(cpu, gpu, np.float64)


def test_float32_sequence_output_regressor_with_dropout():
    rng = np.random.default_rng(13)
    X, lengths = ragged(rng, 4, 3, 2)
    y = [rng.standard_normal((len(x), 2)) for x in X]
    y = np.stack([np.pad(t, ((0, 3 - len(t)), (0, 0))) for t in y])

    def make(device):
        return LSTMRegressor(hidden_size=3, num_layers=2, dropout=0.3, output_dropout=0.3,
                             batch_size=2, max_iter=2, dtype="float32", random_state=0,
                             device=device)

    cpu, gpu = fit_twins(make, X, y)
    assert cpu.network_.sequence_output and cpu.network_.output_dropout == 0.3
    assert_same_fit(cpu, gpu, np.float32)


@pytest.mark.parametrize("readout", ["mean", "max", "mean_max"])
def test_pooled_readouts_bidirectional_ragged(readout):
    rng = np.random.default_rng(14)
    X, _ = ragged(rng, 6, 4, 2)
    y = np.array([0, 1, 2, 0, 1, 2])

    def make(device):
        return LSTMClassifier(hidden_size=3, bidirectional=True, readout=readout,
                              batch_size=3, max_iter=2, dtype="float64", random_state=0,
                              device=device)

    cpu, gpu = fit_twins(make, X, y)
    assert gpu.network_.readout == readout
    assert_same_fit(cpu, gpu, np.float64)
    assert_matches(gpu.predict_proba(X), cpu.predict_proba(X), np.float64, "proba")


def test_estimator_stream_on_cuda_equals_predict():
    # A fitted GPU estimator streams through the CUDA backend's inference runner.
    rng = np.random.default_rng(15)
    X = rng.normal(size=(6, 5, 2))
    y = np.array([0, 1, 0, 1, 1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpu = LSTMClassifier(hidden_size=3, readout="mean", patch_length=2, max_iter=2,
                             dtype="float64", random_state=0, device="cuda",
                             input_scaling="channel").fit(X, y)
    stream = gpu.stream(batch_size=2)
    for stop in (1, 2, 5):
        proba = stream.predict_proba(X[:2, stream.n_steps_seen:stop])
        assert_matches(proba, gpu.predict_proba(X[:2, :stop]), np.float64, f"{stop} steps")


# ----------------------------------------------------------- what crosses the bus
def test_only_the_status_comes_back_per_step(monkeypatch):
    """After the data and weights went over, a step sends its row indices and reads back
    the few-byte status; nothing weight-sized moves until the fit ends."""
    device_array_type = type(cuda.device_array(1))
    events = []
    in_step = [None]
    nested = [0]  # to_device may copy through copy_to_device: count the transfer once

    def log(kind, nbytes):
        if not nested[0]:
            events.append((in_step[0], kind, int(nbytes)))

    to_device = cuda.to_device

    def counting_to_device(ary, *args, **kwargs):
        log("h2d", np.asarray(ary).nbytes)
        nested[0] += 1
        try:
            return to_device(ary, *args, **kwargs)
        finally:
            nested[0] -= 1

    copy_to_host = device_array_type.copy_to_host
    copy_to_device = device_array_type.copy_to_device

    def counting_copy_to_host(self, *args, **kwargs):
        log("d2h", self.nbytes)
        return copy_to_host(self, *args, **kwargs)

    def counting_copy_to_device(self, ary, *args, **kwargs):
        if isinstance(ary, np.ndarray):  # device-to-device copies stay off the bus
            log("h2d", np.asarray(ary).nbytes)
        return copy_to_device(self, ary, *args, **kwargs)

    step = gt.DeviceTrainer.step
    n_steps = [0]

    def counted_step(self, idx):
        n_steps[0] += 1
        in_step[0] = n_steps[0]
        try:
            return step(self, idx)
        finally:
            in_step[0] = None

    monkeypatch.setattr(cuda, "to_device", counting_to_device)
    monkeypatch.setattr(device_array_type, "copy_to_host", counting_copy_to_host)
    monkeypatch.setattr(device_array_type, "copy_to_device", counting_copy_to_device)
    monkeypatch.setattr(gt.DeviceTrainer, "step", counted_step)

    rng = np.random.default_rng(14)
    X = rng.standard_normal((4, 3, 2))
    y = rng.standard_normal(4)
    # Without dropout (a mask drawn on the host would cross too, one per step).
    est = LSTMRegressor(hidden_size=3, batch_size=2, max_iter=2, dtype="float32",
                        random_state=0, device="cuda", output_dropout=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    assert n_steps[0] == 4
    weight_bytes = est.network_.n_params * 4
    first = next(i for i, e in enumerate(events) if e[0] == 1)
    last = max(i for i, e in enumerate(events) if e[0] == n_steps[0])
    for k in range(1, n_steps[0] + 1):
        mine = [(kind, nbytes) for s, kind, nbytes in events if s == k]
        assert mine == [("h2d", 2 * 8), ("d2h", gt._N_REPORTED * 8)], (k, mine)
    # Between the first and the last step nothing else crosses: the best-epoch snapshot
    # is a device-to-device copy.
    assert all(e[0] is not None for e in events[first:last + 1])
    # The fit starts by sending the data and weights and ends by fetching the weights.
    assert any(kind == "h2d" and nbytes >= weight_bytes for _, kind, nbytes in events[:first])
    assert any(kind == "d2h" and nbytes >= weight_bytes
               for _, kind, nbytes in events[last + 1:])


# ------------------------------------------------------- a fitted GPU estimator elsewhere
_PREDICT_WITHOUT_CUDA = """
import pickle, sys
import numpy as np
from numlstm.nn.backend import resolve_device
assert resolve_device("auto") == "cpu"
with open(sys.argv[1], "rb") as f:
    est, X = pickle.load(f)
lstm = est.network_.lstm
assert lstm.device == "cpu", lstm.device
assert type(lstm.flat_parameters) is np.ndarray and type(est.network_.coef_) is np.ndarray
np.save(sys.argv[2], est.predict_proba(X))
"""


def test_fitted_gpu_estimator_pickles_and_predicts_without_cuda(tmp_path):
    rng = np.random.default_rng(15)
    X = rng.standard_normal((4, 3, 2))
    y = np.array([0, 1, 1, 0])
    est = LSTMClassifier(hidden_size=3, batch_size=2, max_iter=1, dtype="float64",
                         random_state=0, device="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    assert type(est.network_.lstm.flat_parameters) is np.ndarray
    expected = est.predict_proba(X)  # the CUDA kernels, host-array interface
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps((est, X)))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["NUMBA_DISABLE_CUDA"] = "1"  # whatever this machine has, CUDA is unavailable there
    env["CUDA_VISIBLE_DEVICES"] = ""
    out = tmp_path / "proba.npy"
    result = subprocess.run([sys.executable, "-c", _PREDICT_WITHOUT_CUDA, str(path), str(out)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-9, atol=1e-12)


def test_divergence_is_caught_on_the_same_step_and_keeps_the_same_weights():
    """A step size that overflows float32: the GPU fit stops where the CPU fit stops, with
    the same error and the same last finite weights."""
    rng = np.random.default_rng(16)
    X = rng.standard_normal((4, 3, 2))
    y = 10 * rng.standard_normal(4)
    outcomes = []
    for device in ("cpu", "cuda"):
        est = LSTMRegressor(hidden_size=3, batch_size=2, max_iter=2, solver="sgd",
                            learning_rate_init=3e38, momentum=0.0, clip_grad_norm=None,
                            dtype="float32", random_state=0, device=device)
        with pytest.raises(TrainingDivergedError) as info, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the simulator's overflow warnings
            est.fit(X, y)
        outcomes.append((est, info.value))
    (cpu, cpu_err), (gpu, gpu_err) = outcomes
    # (Which of loss and gradient overflows first depends on the summation order of
    # products near the float32 limit, so only the step is compared.)
    assert (gpu_err.epoch, gpu_err.step) == (cpu_err.epoch, cpu_err.step)
    flat = gpu.network_.get_flat_params()
    assert type(flat) is np.ndarray and np.isfinite(flat).all()
    assert_matches(flat, cpu.network_.get_flat_params(), np.float32, "last finite weights")
    assert not hasattr(gpu, "_optimizer")


def test_free_gpu_memory_is_known_on_a_gpu_and_unknown_in_the_simulator():
    from numlstm._utils.memory import available_device_memory
    from numlstm.nn.cuda_backend import _simulator_active

    free = available_device_memory()
    if _simulator_active():
        assert free is None  # the simulator's figure is infinite
    else:
        assert isinstance(free, int) and free > 0


@pytest.mark.parametrize("free", [10_000, 2**20])
def test_a_training_set_too_large_for_the_gpu_is_refused_before_upload(monkeypatch, free):
    from numlstm._utils import memory as _memory

    X = np.random.default_rng(0).standard_normal((2000, 50, 3))  # 1.2 MB in float32
    y = X[:, :, 0].sum(axis=1)
    uploads = []
    monkeypatch.setattr(_memory, "available_device_memory", lambda: free)
    monkeypatch.setattr(gt.cuda, "to_device", lambda *a, **k: uploads.append(a))
    model = LSTMRegressor(hidden_size=4, max_iter=1, device="cuda", random_state=0)
    with pytest.raises(MemoryError, match=r"training on the GPU with 2000 sequences of 50 "
                                          r"steps needs about .* of GPU memory, but only "
                                          r".* is free on the GPU"):
        model.fit(X, y)
    assert uploads == []


def test_a_training_set_that_fits_trains(monkeypatch):
    from numlstm._utils import memory as _memory

    monkeypatch.setattr(_memory, "available_device_memory", lambda: 2**30)
    X = np.random.default_rng(0).standard_normal((8, 5, 2))
    model = LSTMRegressor(hidden_size=3, max_iter=1, batch_size=4, device="cuda",
                          random_state=0).fit(X, X[:, :, 0].sum(axis=1))
    assert model.n_iter_ == 1


def test_a_forward_pass_too_large_for_the_gpu_is_refused(monkeypatch):
    from numlstm import LSTM
    from numlstm._utils import memory as _memory

    layer = LSTM(8, 64, device="cuda", dtype="float32", random_state=0)
    monkeypatch.setattr(_memory, "available_device_memory", lambda: 2**20)
    # 4096 sequences x 300 steps of a 64-unit layer: ~1.5 GiB of activations to train.
    x = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (4096, 300, 8), (0, 0, 0))
    with pytest.raises(MemoryError, match="of GPU memory, but only 0.0 GiB is free on the GPU"):
        layer.forward(x)


def test_a_gpu_forward_pass_also_needs_room_in_ram(monkeypatch):
    # Each layer's output comes back to the host, and training keeps the layer inputs.
    from numlstm import LSTM
    from numlstm._utils import memory as _memory

    layer = LSTM(8, 64, device="cuda", dtype="float32", random_state=0)
    monkeypatch.setattr(_memory, "available_device_memory", lambda: 2**40)
    monkeypatch.setattr(_memory, "available_memory", lambda: 2**20)
    x = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (4096, 300, 8), (0, 0, 0))
    with pytest.raises(MemoryError, match="of memory, but only 0.0 GiB is available"):
        layer.forward(x)
