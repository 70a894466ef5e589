"""Checkpoint files: what they hold, resuming from them, and refusing damaged, foreign or
pickled files (tests/training/test_reliability_training.py has the resume-equals-
uninterrupted checks of the estimators' configurations)."""

import io
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import numlstm
from numlstm import ModelFileError
from numlstm.datasets import make_adding_problem
from numlstm.estimators import LSTMClassifier, LSTMRegressor, load_checkpoint
from numlstm.training.checkpoints import read_checkpoint
from numlstm.training.optimizers import AdamOptimizer, SGDOptimizer

from helpers import interrupt_at

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, Y = make_adding_problem(64, 5, random_state=1)
# 64 samples in batches of 16: 4 steps per epoch
PARAMS = dict(hidden_size=3, batch_size=16, max_iter=8, random_state=0)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(numlstm.__file__)))


def _interrupted_checkpoint(tmp_path, monkeypatch, **params):
    """A checkpoint of a fit interrupted in epoch 4 (the last checkpoint is epoch 3)."""
    path = tmp_path / "run.ckpt"
    interrupt_at(monkeypatch, call=3 * 4 + 2)
    with pytest.raises(KeyboardInterrupt):
        LSTMRegressor(**{**PARAMS, **params}, checkpoint=path).fit(X, Y)
    monkeypatch.undo()
    return path


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write_members(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _header(members):
    raw = np.load(io.BytesIO(members["__numlstm__.npy"]), allow_pickle=False)
    return json.loads(raw.tobytes().decode())


def _with_header(members, header):
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    return {**members, "__numlstm__.npy": buffer.getvalue()}


# ---------------------------------------------------------------- what is saved
@pytest.mark.parametrize("solver, optimizer", [("adam", AdamOptimizer), ("sgd", SGDOptimizer)])
def test_checkpoint_holds_the_whole_training_state(tmp_path, monkeypatch, solver, optimizer):
    path = _interrupted_checkpoint(tmp_path, monkeypatch, solver=solver, early_stopping=True)
    with zipfile.ZipFile(path) as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())
    header = _header(_members(path))
    assert header["format"] == "numlstm-checkpoint" and header["format_version"] == 3
    assert header["class"] == "LSTMRegressor" and len(header["fingerprint"]) == 64
    saved = read_checkpoint(path)
    state = saved["state"]
    assert state["n_iter_"] == 3 and len(state["loss_curve_"]) == 3
    assert type(state["_optimizer"]) is optimizer
    moments = state["_optimizer"].ms if solver == "adam" else state["_optimizer"].velocities
    assert len(moments) == len(state["network_"].params)
    assert any(np.any(m != 0) for m in moments)  # the running state, not a fresh one
    assert isinstance(state["_random_state"], np.random.RandomState)
    fit_state = state["_fit_state"]
    assert not fit_state["finished"] and fit_state["start_iter"] == 0
    train_idx, val_idx = fit_state["split"]
    assert sorted(np.concatenate([train_idx, val_idx]).tolist()) == list(range(64))
    assert fit_state["best_params"].shape == state["network_"].get_flat_params().shape
    assert len(state["validation_scores_"]) == 3


def test_resume_keeps_the_learning_rate_decays(tmp_path, monkeypatch):
    # tol so large that every epoch is a plateau: the learning rate is divided after the
    # second epoch, then stopping is decided; the resumed run must count the same decays.
    params = dict(learning_rate="adaptive", n_iter_no_change=1, tol=1e3, max_iter=8)
    reference = LSTMRegressor(**PARAMS | params).fit(X, Y)
    path = _interrupted_checkpoint(tmp_path, monkeypatch, **params)
    saved = read_checkpoint(path)["state"]
    assert saved["_fit_state"]["decays"] >= 1
    assert saved["_optimizer"].learning_rate_init < PARAMS.get("learning_rate_init", 0.005)
    resumed = LSTMRegressor(**PARAMS | params, checkpoint=path).fit(X, Y)
    assert resumed.n_iter_ == reference.n_iter_ < 8
    assert resumed.loss_curve_ == reference.loss_curve_
    np.testing.assert_array_equal(resumed.predict(X), reference.predict(X))


def test_lbfgs_checkpoint_loads_without_optimizer_state(tmp_path):
    path = tmp_path / "lbfgs.ckpt"
    est = LSTMRegressor(**PARAMS | dict(solver="lbfgs", max_iter=4), checkpoint=path)
    est.fit(X, Y)
    loaded = load_checkpoint(path)
    assert loaded.n_iter_ == est.n_iter_
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_checkpoint_of_an_earlier_version_gets_the_parameters_added_since(
        tmp_path, monkeypatch):
    """A checkpoint written before a parameter existed names none of it: the model takes
    the value it was trained with (patch_length 1, not today's "auto")."""
    from numlstm.estimators import _base

    path = tmp_path / "old.ckpt"
    est = LSTMRegressor(**PARAMS | dict(max_iter=2, patch_length=1), checkpoint=path)
    est.fit(X, Y)
    payload = _base._read_checkpoint(path)
    for name in ("patch_length", "n_ensemble", "readout"):
        del payload["params"][name]
    monkeypatch.setattr(_base, "_read_checkpoint", lambda path: payload)
    loaded = load_checkpoint(path)
    assert (loaded.patch_length, loaded.n_ensemble, loaded.readout) == (1, 1, "last")
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_checkpoint_state_is_checked_like_a_model_files_attributes(tmp_path, monkeypatch):
    """A crafted checkpoint cannot replace a method of the estimator it loads into (it
    could make ``predict`` return its input), and a damaged fit state says so."""
    from numlstm.estimators import _base

    path = tmp_path / "crafted.ckpt"
    LSTMRegressor(**PARAMS | dict(max_iter=2), checkpoint=path).fit(X, Y)
    real = _base.read_checkpoint(path)

    def crafted(state):
        payload = dict(real, state=dict(real["state"], **state))
        monkeypatch.setattr(_base, "read_checkpoint", lambda path: payload)

    crafted({"predict": np.float32(0)})
    with pytest.raises(ModelFileError, match="invalid attribute name 'predict'"):
        load_checkpoint(path)
    crafted({"_fit_state": [1, 2]})
    with pytest.raises(ModelFileError, match="fit state is a list"):
        LSTMRegressor(**PARAMS | dict(max_iter=2), checkpoint=path).fit(X, Y)


def test_classifier_labels_survive(tmp_path):
    y = np.where(Y > np.median(Y), "high", "low")
    path = tmp_path / "clf.ckpt"
    clf = LSTMClassifier(**PARAMS | dict(max_iter=2), checkpoint=path).fit(X, y)
    loaded = load_checkpoint(path)
    assert type(loaded) is LSTMClassifier
    assert list(loaded.classes_) == ["high", "low"]
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


# -------------------------------------------------------------- refused files
def _fit_counting_steps(monkeypatch, path):
    """Fit on the checkpoint ``path``; return the error and the loss evaluations run."""
    calls = interrupt_at(monkeypatch, call=-1)
    with pytest.raises(ModelFileError) as info:
        LSTMRegressor(**PARAMS, checkpoint=path).fit(X, Y)
    monkeypatch.undo()
    return info.value, calls[0]


def test_tampered_array_is_refused_and_nothing_runs(tmp_path, monkeypatch):
    path = _interrupted_checkpoint(tmp_path, monkeypatch)
    members = _members(path)
    name = next(n for n in sorted(members) if n != "__numlstm__.npy"
                and len(members[n]) > 200)
    data = bytearray(members[name])
    data[-5] ^= 0x01  # one bit of one weight
    _write_members(path, {**members, name: bytes(data)})
    before = path.read_bytes()
    error, steps = _fit_counting_steps(monkeypatch, path)
    assert "checksum" in str(error) and steps == 0
    assert path.read_bytes() == before  # not overwritten
    with pytest.raises(ModelFileError, match="checksum"):
        load_checkpoint(path)


@pytest.mark.parametrize("change", ["shape", "unknown kind", "optimizer attribute",
                                    "format", "newer version", "attribute name"])
def test_tampered_header_is_refused(tmp_path, monkeypatch, change):
    path = _interrupted_checkpoint(tmp_path, monkeypatch)
    members = _members(path)
    header = _header(members)
    if change == "shape":
        header["arrays"]["a0"]["shape"] = [12345]
    elif change == "unknown kind":
        header["state"]["loss_"] = {"$pickle": "x"}
    elif change == "optimizer attribute":
        header["state"]["_optimizer"]["$optimizer"]["state"]["$dict"]["__class__"] = 1
    elif change == "format":
        header["format"] = "numlstm-model"
    elif change == "newer version":
        header["format_version"] = 99
    else:
        header["state"]["__class__"] = 1
    _write_members(path, _with_header(members, header))
    error, steps = _fit_counting_steps(monkeypatch, path)
    assert steps == 0
    if change == "newer version":
        assert "Upgrade numlstm" in str(error)


def test_truncated_checkpoint_is_refused(tmp_path, monkeypatch):
    path = _interrupted_checkpoint(tmp_path, monkeypatch)
    whole = path.read_bytes()
    for size in sorted({0, 1, 3, 10, 100, len(whole) // 2, len(whole) - 23, len(whole) - 1}):
        path.write_bytes(whole[:size])
        error, steps = _fit_counting_steps(monkeypatch, path)
        assert steps == 0, size
        with pytest.raises(ModelFileError):
            load_checkpoint(path)
    path.write_bytes(whole)
    assert load_checkpoint(path).n_iter_ == 3


class _Payload:
    """Unpickling it would create a file: the proof that a pickle was (not) loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("protocol", [2, 4, pickle.HIGHEST_PROTOCOL])
def test_pickle_checkpoint_is_refused_unread(tmp_path, monkeypatch, protocol):
    marker = tmp_path / "code-ran"
    path = tmp_path / "old.ckpt"
    path.write_bytes(pickle.dumps({"numlstm_checkpoint": 1, "state": _Payload(str(marker))},
                                  protocol=protocol))
    error, steps = _fit_counting_steps(monkeypatch, path)
    assert "pickle" in str(error) and "run arbitrary code" in str(error)
    assert steps == 0
    with pytest.raises(ModelFileError, match="pickle"):
        load_checkpoint(path)
    assert not marker.exists()


def test_model_file_is_not_a_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    numlstm.save(LSTMRegressor(**PARAMS | dict(max_iter=1)).fit(X, Y), path)
    error, steps = _fit_counting_steps(monkeypatch, path)
    assert "not a numlstm checkpoint" in str(error) and steps == 0


# ------------------------------------------------------------ killed process
_CHILD = textwrap.dedent("""
    import sys, warnings
    import numpy as np
    from numlstm import LSTMRegressor
    from numlstm.datasets import make_adding_problem
    warnings.simplefilter("ignore")
    X, Y = make_adding_problem(64, 5, random_state=1)
    est = LSTMRegressor(**{params!r}, checkpoint={path!r})
    print("ready", flush=True)
    est.fit(X, Y)
    print("finished", flush=True)
""")


def test_sigkill_at_random_moments_leaves_a_loadable_checkpoint(tmp_path):
    """Kill a training process many times (SIGKILL: no clean-up at all); every time, the
    last complete checkpoint loads, and the next process resumes from it. The run made
    of all those pieces equals an uninterrupted one, bit for bit."""
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("SIGKILL is POSIX only")
    path = tmp_path / "run.ckpt"
    # Many epochs, checkpointed every epoch; no early end (constant rate, no patience).
    params = PARAMS | dict(max_iter=100000, learning_rate="constant",
                           n_iter_no_change=100000, checkpoint_every=1)
    script = _CHILD.format(params=params, path=str(path))
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rng = np.random.default_rng(12345)
    progress, kills, start = [], 0, time.monotonic()
    while kills < 24 and time.monotonic() - start < 75:
        child = subprocess.Popen([sys.executable, "-c", script], env=env,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.7))  # while resuming, training or writing
        child.kill()
        child.wait()
        child.stdout.close()
        kills += 1
        if not path.exists():
            continue  # killed before its first checkpoint
        saved = read_checkpoint(path)  # never raises: always a complete checkpoint
        n_iter = saved["state"]["n_iter_"]
        assert not saved["state"]["_fit_state"]["finished"]
        assert n_iter == len(saved["state"]["loss_curve_"])
        assert not progress or n_iter >= progress[-1]  # resumed, never restarted
        progress.append(n_iter)
    print("kills", kills, "checkpointed epochs", progress)
    assert kills >= 12 and len(progress) >= 8
    assert progress[-1] > progress[0]
    # The temporary files of killed writes are all that is left besides the checkpoint.
    assert all(name == "run.ckpt" or name.startswith(".run.ckpt.")
               for name in os.listdir(tmp_path))
    # Resume once more, to two epochs after the last checkpoint, and compare with an
    # uninterrupted fit of as many epochs.
    k = progress[-1]
    resumed = LSTMRegressor(**params | dict(max_iter=k + 2), checkpoint=path).fit(X, Y)
    reference = LSTMRegressor(**params | dict(max_iter=k + 2)).fit(X, Y)
    assert resumed.n_iter_ == reference.n_iter_ == k + 2
    assert resumed.loss_curve_ == reference.loss_curve_
    np.testing.assert_array_equal(resumed.predict(X), reference.predict(X))
