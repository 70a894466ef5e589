"""Interrupted training, checkpoints, determinism and progress display of the estimators."""

import hashlib
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
import types

import numba
import numpy as np
import pytest

import numlstm
from numlstm.datasets import make_adding_problem
from numlstm.estimators import LSTMClassifier, LSTMRegressor, load_checkpoint
from numlstm.estimators import _base
from numlstm.nn.network import LSTMNetwork
from numlstm.training.checkpoints import read_checkpoint

from helpers import interrupt_at

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, Y = make_adding_problem(96, 6, random_state=0)
Y_CLF = np.where(Y > np.median(Y), "high", "low")
# 96 samples in batches of 32: 3 steps per epoch
PARAMS = dict(hidden_size=4, batch_size=32, max_iter=6, n_iter_no_change=100,
              random_state=0)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(numlstm.__file__)))


def _fit(Est=LSTMRegressor, y=Y, **params):
    return Est(**{**PARAMS, **params}).fit(X, y)


# ---------------------------------------------------------------- interruption
@pytest.mark.parametrize("early_stopping", [False, True])
def test_interrupt_keeps_best_weights_so_far(monkeypatch, early_stopping):
    est = LSTMRegressor(**PARAMS, early_stopping=early_stopping)
    interrupt_at(monkeypatch, call=(3 if not early_stopping else 3) * 3 + 2)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, Y)
    monkeypatch.undo()
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3
    assert not hasattr(est, "_fit_state")
    # the best epoch so far, as early stopping would choose it
    if early_stopping:
        reference = _fit(max_iter=3, early_stopping=True)  # restores its best epoch too
    else:
        best_epoch = int(np.argmin(est.loss_curve_)) + 1
        reference = _fit(max_iter=best_epoch)
        assert est.loss_curve_[:best_epoch] == reference.loss_curve_
    np.testing.assert_array_equal(est.network_.get_flat_params(),
                                  reference.network_.get_flat_params())
    np.testing.assert_array_equal(est.predict(X), reference.predict(X))
    # and it can go on training
    est.partial_fit(X, Y)
    assert est.n_iter_ == 4


def test_interrupt_in_first_epoch_leaves_usable_estimator(monkeypatch):
    est = LSTMClassifier(**PARAMS)
    interrupt_at(monkeypatch, call=2)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, Y_CLF)
    assert est.n_iter_ == 0 and est.loss_curve_ == []
    assert est.network_.all_finite()
    assert set(est.predict(X)) <= {"high", "low"}


def test_interrupt_inside_an_update_undoes_the_half_step(monkeypatch):
    est = LSTMRegressor(**PARAMS)
    from numlstm.training.optimizers import AdamOptimizer

    before = []
    original = AdamOptimizer.update_params

    def update_params(self, params, grads):
        before.append([p.copy() for p in params])
        if len(before) == 2:
            params[0] += 1.0  # half of the update done...
            raise KeyboardInterrupt  # ...when Ctrl-C arrives
        original(self, params, grads)

    monkeypatch.setattr(AdamOptimizer, "update_params", update_params)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, Y)
    for param, saved in zip(est.network_.params, before[1]):
        np.testing.assert_array_equal(param, saved)


def test_interrupt_lbfgs_keeps_best_point(monkeypatch):
    est = LSTMRegressor(hidden_size=3, solver="lbfgs", max_iter=50, random_state=0)
    losses = []
    original = LSTMNetwork.loss_and_gradient

    def loss_and_gradient(self, *args, **kwargs):
        if len(losses) == 12:
            raise KeyboardInterrupt
        losses.append((original(self, *args, **kwargs), self.get_flat_params()))
        return losses[-1][0]

    monkeypatch.setattr(LSTMNetwork, "loss_and_gradient", loss_and_gradient)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, Y)
    best_loss, best_params = min(losses, key=lambda item: item[0])
    np.testing.assert_array_equal(est.network_.get_flat_params(), best_params)
    assert est.loss_ == pytest.approx(best_loss)
    assert 1 <= est.n_iter_ == len(est.loss_curve_) < 12
    assert np.isfinite(est.predict(X)).all()


# ------------------------------------------------------------------ checkpoints
@pytest.mark.parametrize("Est, y, params", [
    (LSTMRegressor, Y, {}),
    (LSTMRegressor, Y, {"solver": "sgd", "early_stopping": True}),
    (LSTMRegressor, Y, {"num_layers": 2, "dropout": 0.3}),
    (LSTMClassifier, Y_CLF, {"early_stopping": True, "bidirectional": True}),
    # Sequences of different lengths read in patches: the data's fingerprint is of the
    # lengths in steps, whether the fit starts or resumes.
    (LSTMRegressor, Y, {"patch_length": 2, "ragged": True}),
])
def test_resume_from_checkpoint_equals_uninterrupted_fit(tmp_path, monkeypatch, Est, y,
                                                         params):
    params = dict(params)
    data = X
    if params.pop("ragged", False):
        data = [x[:3 + i % 4] for i, x in enumerate(X)]
    reference = Est(**PARAMS, **params).fit(data, y)
    path = tmp_path / "model.ckpt"
    est = Est(**PARAMS, **params, checkpoint=path, checkpoint_every=2)
    interrupt_at(monkeypatch, call=4 * 3 + 2)  # during epoch 5: last checkpoint at 4
    with pytest.raises(KeyboardInterrupt):
        est.fit(data, y)
    monkeypatch.undo()
    assert load_checkpoint(path).n_iter_ == 4
    resumed = Est(**PARAMS, **params, checkpoint=str(path), checkpoint_every=2).fit(data, y)
    assert resumed.n_iter_ == reference.n_iter_ == 6
    assert resumed.loss_curve_ == reference.loss_curve_
    assert resumed.validation_scores_ == reference.validation_scores_
    np.testing.assert_array_equal(resumed.network_.get_flat_params(),
                                  reference.network_.get_flat_params())
    np.testing.assert_array_equal(resumed.predict(data), reference.predict(data))
    # the interrupted estimator itself resumes the same way
    est.fit(data, y)
    np.testing.assert_array_equal(est.predict(data), reference.predict(data))


def test_checkpoint_every_n_epochs_and_at_the_end(tmp_path, monkeypatch):
    written = []
    original = _base.BaseLSTM._write_checkpoint

    def record(self, fingerprint):
        written.append(self.n_iter_)
        original(self, fingerprint)

    monkeypatch.setattr(_base.BaseLSTM, "_write_checkpoint", record)
    path = tmp_path / "ckpt"
    est = LSTMRegressor(**{**PARAMS, "max_iter": 5}, checkpoint=path, checkpoint_every=2)
    est.fit(X, Y)
    assert written == [2, 4, 5]
    saved = load_checkpoint(path)
    np.testing.assert_array_equal(saved.predict(X), est.predict(X))
    assert not hasattr(saved, "_fit_state")
    assert os.listdir(tmp_path) == ["ckpt"]  # no temporary file left behind


def test_checkpoint_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "ckpt"
    replaced = []
    real_replace = os.replace

    def replace(src, dst):
        replaced.append((src, dst))
        read_checkpoint(src)  # complete before it takes the checkpoint's name
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    real_savez = np.savez
    saves = [0]

    def failing_savez(f, **arrays):
        saves[0] += 1
        if saves[0] == 3:
            f.write(b"partial garbage")
            raise OSError("No space left on device")
        real_savez(f, **arrays)

    monkeypatch.setattr(np, "savez", failing_savez)
    est = LSTMRegressor(**PARAMS, checkpoint=path)
    with pytest.raises(OSError, match="No space"):
        est.fit(X, Y)
    assert all(os.path.dirname(src) == os.path.dirname(os.path.abspath(dst))
               for src, dst in replaced)
    assert os.listdir(tmp_path) == ["ckpt"]  # the failed temporary file is removed
    assert load_checkpoint(path).n_iter_ == 2  # the previous checkpoint is intact
    assert np.isfinite(est.predict(X)).all()


def test_checkpoint_in_a_missing_folder_is_refused_before_training(tmp_path):
    path = tmp_path / "missing" / "fit.ckpt"
    fitted = _fit()
    before = fitted.network_.get_flat_params()
    for call in (lambda est: est.fit(X, Y), lambda est: est.partial_fit(X, Y)):
        with pytest.raises(FileNotFoundError, match="missing.*does not exist"):
            call(fitted.set_params(checkpoint=path))
        # nothing trained: the fitted model is as it was
        assert fitted.n_iter_ == PARAMS["max_iter"]
        np.testing.assert_array_equal(fitted.network_.get_flat_params(), before)


def test_checkpoint_refuses_other_data_or_parameters(tmp_path, monkeypatch):
    path = tmp_path / "ckpt"
    interrupt_at(monkeypatch, call=5)
    with pytest.raises(KeyboardInterrupt):
        LSTMRegressor(**PARAMS, checkpoint=path).fit(X, Y)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="different data"):
        LSTMRegressor(**PARAMS, checkpoint=path).fit(X, Y + 1)
    with pytest.raises(ValueError, match="hidden_size"):
        LSTMRegressor(**{**PARAMS, "hidden_size": 5}, checkpoint=path).fit(X, Y)
    with pytest.raises(ValueError, match="LSTMRegressor, not LSTMClassifier"):
        LSTMClassifier(**PARAMS, checkpoint=path).fit(X, Y_CLF)
    # settings that do not change the result may differ
    est = LSTMRegressor(**{**PARAMS, "verbose": 0, "tol": 1e-3}, checkpoint=path,
                        checkpoint_every=3).fit(X, Y)
    assert est.n_iter_ == 6


def test_finished_checkpoint_is_overwritten_by_a_new_fit(tmp_path):
    path = tmp_path / "ckpt"
    first = LSTMRegressor(**{**PARAMS, "max_iter": 2}, checkpoint=path).fit(X, Y)
    second = LSTMRegressor(**{**PARAMS, "max_iter": 3}, checkpoint=path).fit(X + 1, Y)
    assert first.n_iter_ == 2 and second.n_iter_ == 3
    assert load_checkpoint(path).n_iter_ == 3


def test_partial_fit_checkpoints_but_fit_does_not_resume_them(tmp_path):
    path = tmp_path / "ckpt"
    est = LSTMRegressor(**PARAMS, checkpoint=path)
    est.partial_fit(X, Y)
    est.partial_fit(X, Y)
    assert load_checkpoint(path).n_iter_ == 2
    fresh = LSTMRegressor(**PARAMS, checkpoint=path).fit(X, Y)
    assert fresh.n_iter_ == 6


def test_lbfgs_checkpoint_and_resume(tmp_path, monkeypatch):
    path = tmp_path / "ckpt"
    params = dict(hidden_size=3, solver="lbfgs", max_iter=8, tol=0.0, random_state=0,
                  checkpoint=path, checkpoint_every=2)
    calls = interrupt_at(monkeypatch, call=10**9)
    est = LSTMRegressor(**params)
    est.fit(X, Y)
    n_evals = calls[0]
    monkeypatch.undo()
    # The last evaluation but one: late enough that a checkpoint was written (line
    # searches take more than one evaluation, so a half-way interruption may come first).
    interrupt_at(monkeypatch, call=n_evals - 1)
    interrupted = LSTMRegressor(**params)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(X, Y)
    monkeypatch.undo()
    checkpoint = load_checkpoint(path)
    saved = checkpoint.n_iter_
    assert saved >= 2 and saved % 2 == 0
    assert not read_checkpoint(path)["state"]["_fit_state"]["finished"]
    # The checkpoint's record is that of its iteration.
    assert checkpoint.loss_ == checkpoint.best_loss_ == checkpoint.loss_curve_[-1]
    assert 0 < checkpoint.t_ < est.t_
    resumed = LSTMRegressor(**params).fit(X, Y)
    assert resumed.n_iter_ <= 8 and len(resumed.loss_curve_) == resumed.n_iter_
    assert resumed.loss_ <= load_checkpoint(path).loss_curve_[saved - 1] + 1e-12
    assert np.isfinite(resumed.predict(X)).all()


def test_lbfgs_resumed_with_no_iteration_left_finishes(tmp_path, monkeypatch):
    """A checkpoint written at the last iteration, resumed: the fit ends with its record
    and says so in the checkpoint (it used to stay unfinished, every later fit a no-op)."""
    path = tmp_path / "ckpt"
    params = dict(hidden_size=3, solver="lbfgs", max_iter=8, tol=0.0, random_state=0,
                  checkpoint=path, checkpoint_every=2)
    calls = interrupt_at(monkeypatch, call=10**9)
    LSTMRegressor(**params).fit(X, Y)
    monkeypatch.undo()
    interrupt_at(monkeypatch, call=calls[0] - 1)  # after a checkpoint (see above)
    with pytest.raises(KeyboardInterrupt):
        LSTMRegressor(**params).fit(X, Y)
    monkeypatch.undo()
    saved = load_checkpoint(path)
    assert saved.n_iter_ >= 2
    assert read_checkpoint(path)["state"]["_fit_state"]["finished"] is False
    params["max_iter"] = saved.n_iter_
    resumed = LSTMRegressor(**params).fit(X, Y)
    assert resumed.n_iter_ == saved.n_iter_ and resumed.loss_ == saved.loss_
    np.testing.assert_array_equal(resumed.network_.get_flat_params(),
                                  saved.network_.get_flat_params())
    assert read_checkpoint(path)["state"]["_fit_state"]["finished"] is True
    # the next fit of the same model starts again rather than resume
    again = LSTMRegressor(**{**params, "max_iter": 1}).fit(X, Y)
    assert again.n_iter_ == 1


def test_real_sigint_then_resume_in_another_process(tmp_path):
    """Ctrl-C (SIGINT) in a training process; the checkpoint resumes here, exactly."""
    path = tmp_path / "ckpt"
    script = textwrap.dedent(f"""
        import faulthandler, signal, sys, warnings
        import numpy as np
        warnings.simplefilter("ignore")
        faulthandler.register(signal.SIGUSR1)  # the test asks for the stacks if it hangs
        # Python ignores SIGINT when it starts ignored, as in a job that a shell without
        # job control sent to the background; Ctrl-C is what this test is about.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from numlstm.datasets import make_adding_problem
        from numlstm.estimators import LSTMRegressor
        X, Y = make_adding_problem(96, 6, random_state=0)
        est = LSTMRegressor(**{PARAMS!r}, checkpoint={str(path)!r})
        # Train until interrupted: no early stop on a plateau either (a fast machine
        # reaches one within the test's 0.3 s and would exit before the signal).
        est.set_params(max_iter=100000, n_iter_no_change=100000)
        try:
            est.fit(X, Y)
        except KeyboardInterrupt:
            assert np.isfinite(est.predict(X)).all()
            print("interrupted", est.n_iter_, flush=True)
            sys.exit(0)
        sys.exit(3)
    """)
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def interrupted_run():
        if path.exists():
            path.unlink()
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        try:
            deadline = time.monotonic() + 120
            while not path.exists() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            assert path.exists(), proc.stderr.read() if proc.poll() is not None else "timeout"
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            try:
                out, err = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                # Show where the interrupted process is stuck.
                proc.send_signal(signal.SIGUSR1)
                time.sleep(2)
                proc.kill()
                out, err = proc.communicate()
                pytest.fail(f"no exit within 120 s of SIGINT; its threads:\n{err}")
        finally:
            if proc.poll() is None:
                proc.kill()
        return proc.returncode, out, err

    returncode, out, err = interrupted_run()
    assert returncode == 0, f"exit {returncode}; stdout: {out!r}; stderr: {err!r}"
    n_done = int(out.split()[-1])
    assert n_done >= 1
    saved = load_checkpoint(path)
    assert 1 <= saved.n_iter_ <= n_done
    # Resuming to epoch max_iter (100000 in the run) would take long: resume to k + 2
    # instead, through the checkpoint, and compare with an uninterrupted run of k + 2
    # epochs. (The weights held at epoch k are not those a k-epoch fit returns, which
    # ends with the lowest-loss epoch's weights.)
    k = saved.n_iter_
    assert saved.loss_curve_ == _fit(max_iter=k, n_iter_no_change=100000).loss_curve_
    resumed = LSTMRegressor(**PARAMS, checkpoint=path)
    resumed.set_params(max_iter=k + 2, n_iter_no_change=100000)
    resumed.fit(X, Y)
    reference = _fit(max_iter=k + 2, n_iter_no_change=100000)
    assert resumed.n_iter_ == k + 2
    assert resumed.loss_curve_ == reference.loss_curve_
    np.testing.assert_array_equal(resumed.network_.get_flat_params(),
                                  reference.network_.get_flat_params())


# ----------------------------------------------------------------- determinism
def _digest(est):
    digest = hashlib.sha256(est.network_.get_flat_params().tobytes())
    digest.update(est.predict(X).tobytes())
    return digest.hexdigest()


DETERMINISM_CASES = [
    dict(),
    dict(num_layers=2, dropout=0.3, bidirectional=True, early_stopping=True),
    dict(solver="sgd", dtype="float64"),
    dict(solver="lbfgs", max_iter=10),
]


@pytest.mark.parametrize("params", DETERMINISM_CASES)
def test_same_random_state_gives_identical_results(params):
    assert _digest(_fit(**params)) == _digest(_fit(**params))


def test_identical_results_across_processes():
    script = textwrap.dedent(f"""
        import hashlib, warnings
        warnings.simplefilter("ignore")
        from numlstm.datasets import make_adding_problem
        from numlstm.estimators import LSTMRegressor
        X, Y = make_adding_problem(96, 6, random_state=0)
        est = LSTMRegressor(**{PARAMS!r}, num_layers=2, dropout=0.3).fit(X, Y)
        digest = hashlib.sha256(est.network_.get_flat_params().tobytes())
        digest.update(est.predict(X).tobytes())
        print(digest.hexdigest())
    """)
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "NUMBA_NUM_THREADS": str(numba.config.NUMBA_NUM_THREADS)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=300, check=True).stdout.split()[-1]
    assert out == _digest(_fit(num_layers=2, dropout=0.3))


def test_warm_start_and_partial_fit_are_reproducible():
    def warm_twice():
        est = LSTMRegressor(**{**PARAMS, "max_iter": 3}, warm_start=True)
        return est.fit(X, Y).fit(X, Y)

    a, b = warm_twice(), warm_twice()
    assert a.n_iter_ == 6
    assert _digest(a) == _digest(b)
    # documented: a warm-start fit starts a fresh optimizer, so two fits of 3 epochs
    # differ from one of 6; partial_fit keeps the optimizer, so 6 calls equal it. (Without
    # dropout, whose noisy losses could make fit end on an earlier, best epoch's weights,
    # which partial_fit does not go back to.)
    one_fit = _fit(max_iter=6, output_dropout=0.0)
    assert one_fit.loss_curve_ == sorted(one_fit.loss_curve_, reverse=True)
    est = LSTMRegressor(**PARAMS, output_dropout=0.0)
    for _ in range(6):
        est.partial_fit(X, Y)
    assert _digest(est) == _digest(one_fit)
    assert est.loss_curve_ == one_fit.loss_curve_


def test_thread_count_changes_results_only_at_rounding_level():
    saved = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = _fit(max_iter=2)
        numba.set_num_threads(saved)
        multi = _fit(max_iter=2)
        # predictions of one model: rounding level
        numba.set_num_threads(1)
        p1 = multi.predict(X)
        numba.set_num_threads(saved)
        p2 = multi.predict(X)
    finally:
        numba.set_num_threads(saved)
    np.testing.assert_allclose(p1, p2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(single.network_.get_flat_params(),
                               multi.network_.get_flat_params(), rtol=1e-3, atol=1e-4)


# ------------------------------------------------------------------- progress
class _Terminal(io.StringIO):
    def isatty(self):
        return True


class _FakeTqdm:
    instances = []

    def __init__(self, total=None, initial=0, **kwargs):
        self.total, self.n, self.kwargs = total, initial, kwargs
        self.postfix, self.written, self.closed = [], [], False
        _FakeTqdm.instances.append(self)

    def set_postfix(self, refresh=True, **values):
        self.postfix.append(values)

    def update(self, n=1):
        self.n += n

    def write(self, msg):
        self.written.append(msg)

    def close(self):
        self.closed = True


def test_verbose_shows_tqdm_bar_on_a_terminal(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", types.SimpleNamespace(tqdm=_FakeTqdm))
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    _FakeTqdm.instances.clear()
    est = LSTMRegressor(**{**PARAMS, "max_iter": 4}, early_stopping=True, verbose=1)
    est.fit(X, Y)
    (bar,) = _FakeTqdm.instances
    assert bar.total == 4 and bar.n == 4 and bar.closed
    assert [set(p) for p in bar.postfix] == [{"loss", "validation"}] * 4
    assert float(bar.postfix[-1]["loss"]) == pytest.approx(est.loss_, abs=1e-6)
    assert "Epoch" not in terminal.getvalue()


def test_verbose_prints_lines_without_tqdm_or_terminal(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # not installed
    monkeypatch.setattr(sys, "stdout", _Terminal())
    LSTMRegressor(**{**PARAMS, "max_iter": 2}, verbose=1).fit(X, Y)
    assert sys.stdout.getvalue().count("Epoch") == 2
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "tqdm", types.SimpleNamespace(tqdm=_FakeTqdm))
    _FakeTqdm.instances.clear()
    LSTMRegressor(**{**PARAMS, "max_iter": 2}, verbose=1).fit(X, Y)  # captured: no tty
    assert capsys.readouterr().out.count("Epoch") == 2
    assert _FakeTqdm.instances == []


def test_verbose_with_real_tqdm(monkeypatch):
    pytest.importorskip("tqdm")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    LSTMRegressor(**{**PARAMS, "max_iter": 2}, verbose=1).fit(X, Y)
    assert "loss=" in terminal.getvalue() and "2/2" in terminal.getvalue()
