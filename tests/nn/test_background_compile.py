"""The second process that compiles a first training step's kernels alongside
(:mod:`numlstm.nn.background_compile`), and the recorded lookups it relies on.

Recording turns every kernel lookup of the process into a dummy, so those parts run in
fresh processes; so do the cold-cache ones, with a numba cache directory of their own.
"""

import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import numlstm
from numlstm import LSTM
from numlstm.nn import background_compile
from numlstm.nn.network import LSTMNetwork

# What every case below trains: a two-layer bidirectional network, a ragged batch of 9
# (two threads get a slice each).
_NETWORK = """
import numpy as np
from numlstm import LSTM
from numlstm.nn.network import LSTMNetwork

def network_and_batch():
    lstm = LSTM(3, 4, num_layers=2, bidirectional=True, dtype="float32", random_state=0)
    network = LSTMNetwork(lstm, 2, random_state=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((9, 6, 3)).astype(np.float32)
    Y = rng.standard_normal((9, 2)).astype(np.float32)
    lengths = np.array([6, 5, 4, 6, 1, 2, 3, 6, 6])
    return network, X, Y, lengths, 0.1
"""


#: The folder this numlstm was imported from: first on every subprocess's module path, so
#: that each runs the numlstm under test (whatever is installed) and shares its cache.
_PACKAGE_PARENT = str(Path(numlstm.__file__).resolve().parents[1])


def _environment(*folders, **env):
    path = os.pathsep.join([*folders, _PACKAGE_PARENT]
                           + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return dict(os.environ, PYTHONPATH=path, **env)


def _run(tmp_path, source, cache=None, **env):
    (tmp_path / "training_case.py").write_text(_NETWORK)
    environment = _environment(str(tmp_path), **env)
    if cache is not None:
        environment["NUMBA_CACHE_DIR"] = str(cache)
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(source)],
                         env=environment, capture_output=True, timeout=540, cwd=tmp_path)
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    return run.stdout.decode()


def test_recording_lists_the_kernels_of_a_step_and_runs_none(tmp_path):
    out = _run(tmp_path, """
        from numba.core import event
        from numlstm.kernels.cpu.indirect_call import recording_compiles
        from training_case import network_and_batch

        compiled = []
        class Listener(event.Listener):
            def on_start(self, e):
                compiled.append(e.data["dispatcher"])
            def on_end(self, e):
                pass
        event.register("numba:compile", Listener())
        network, X, Y, lengths, alpha = network_and_batch()
        before = network.lstm.flat_gradient.copy()
        network.lstm.flat_gradient[:] = 7.0
        with recording_compiles() as requests:
            network.loss_and_gradient(X, Y, lengths, alpha=0.0)
        print(len(compiled))
        # No kernel wrote the recurrent layers' gradients.
        print(bool((network.lstm.flat_gradient == 7.0).all()))
        print(" ".join(d.py_func.__name__ for d, _ in requests))
    """)
    n_compiled, untouched, names = out.splitlines()
    assert n_compiled == "0"
    assert untouched == "True"
    names = names.split()
    for kernel in ("packed_products", "matmul_tn", "lstm_forward_rows", "layer_forward",
                   "lstm_backward_rows", "lstm_weight_gradients", "layer_backward",
                   "_run_slices"):
        assert kernel in names
    # In the order the step needs them: every forward before the first backward.
    assert max(i for i, n in enumerate(names) if n == "layer_forward") < names.index(
        "layer_backward")


@pytest.mark.slow
def test_helper_compiles_the_backward_pass_first_into_a_cache_another_process_loads(
        tmp_path):
    network, X, Y, lengths, alpha = _network_and_batch()
    payload = pickle.dumps((network, "loss_and_gradient", (X, Y, lengths),
                            {"alpha": alpha}))
    cache = tmp_path / "cache"
    report = subprocess.run(
        [sys.executable, "-c", background_compile._HELPER_COMMAND], input=payload,
        env=_environment(NUMBA_CACHE_DIR=str(cache)), capture_output=True, timeout=540,
        cwd=tmp_path)
    assert report.returncode == 0, report.stderr.decode()[-3000:]
    lines = report.stdout.decode().splitlines()
    assert len(lines) >= 12 and len(lines) % 2 == 0
    # Each kernel reported as started, then compiled, one at a time.
    for started, done in zip(lines[::2], lines[1::2]):
        assert started.split(" ", 1) == ["compiling", done.split(" ", 1)[1]]
        assert done.startswith("compiled ")
    names = [line.split(" ", 1)[1] for line in lines[::2]]
    assert len(set(names)) == len(names)
    # Last needed, first compiled.
    assert "recurrent.layer_backward(" in names[0]
    assert any("packed_gemm.packed_products(" in name for name in names[-3:])

    # Kernels that the fitting process names after the work are left out.
    forward = [name for name in names if ".layer_forward(" in name]
    assert len(forward) == 1
    again = subprocess.run(
        [sys.executable, "-c", background_compile._HELPER_COMMAND],
        input=payload + (forward[0] + "\n").encode(),
        env=_environment(NUMBA_CACHE_DIR=str(cache)), capture_output=True, timeout=540,
        cwd=tmp_path)
    assert again.returncode == 0, again.stderr.decode()[-3000:]
    assert [line.split(" ", 1)[1] for line in again.stdout.decode().splitlines()[::2]] == [
        name for name in names if name != forward[0]]

    # A fresh process with that cache compiles none of the step's kernels.
    out = _run(tmp_path, """
        from numlstm.kernels.cpu import recurrent, packed_gemm
        from training_case import network_and_batch

        network, X, Y, lengths, alpha = network_and_batch()
        network.loss_and_gradient(X, Y, lengths, alpha=alpha)
        for kernel in (recurrent.layer_forward, recurrent.layer_backward,
                       recurrent.lstm_forward_rows, recurrent.lstm_backward_rows,
                       recurrent.lstm_weight_gradients, packed_gemm.packed_products,
                       packed_gemm.matmul_tn):
            print(kernel.py_func.__name__, sum(kernel.stats.cache_hits.values()),
                  sum(kernel.stats.cache_misses.values()))
    """, cache=cache, NUMLSTM_BACKGROUND_COMPILE="0")
    for line in out.splitlines():
        name, hits, misses = line.split()
        assert (int(hits), int(misses)) == (1, 0), line


def _network_and_batch():
    namespace = {}
    exec(_NETWORK, namespace)
    return namespace["network_and_batch"]()


@pytest.mark.slow
def test_first_fit_in_an_empty_cache_starts_the_helper_and_trains_the_same(tmp_path):
    """A fresh process and cache: the first training step starts the helper, whose cache
    files the fit then loads; the model is the one trained without it, bit for bit."""
    out = _run(tmp_path, """
        import warnings
        import numpy as np
        from numlstm import LSTMClassifier
        from numlstm.kernels.cpu import recurrent
        from numlstm.nn import background_compile

        rng = np.random.default_rng(0)
        X = rng.standard_normal((24, 12, 2))
        y = (X[:, :, 0].mean(axis=1) > 0).astype(int)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # not converged in 2 epochs
            model = LSTMClassifier(hidden_size=8, max_iter=2, random_state=0).fit(X, y)
        np.save("proba.npy", model.predict_proba(X))
        print(len(background_compile._helpers))
        # The helper ends cleanly (exit status 0), its work done.
        assert all(helper.wait(timeout=120) == 0 for _, helper in background_compile._helpers)
        # Loaded from the helper's cache files rather than compiled here.
        print(sum(recurrent.layer_backward.stats.cache_hits.values()))
    """, cache=tmp_path / "cache")
    n_helpers, backward_loads = out.split()
    assert n_helpers == "1"
    assert int(backward_loads) >= 1

    from numlstm import LSTMClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, 12, 2))
    y = (X[:, :, 0].mean(axis=1) > 0).astype(int)
    with pytest.warns(ConvergenceWarning):
        model = LSTMClassifier(hidden_size=8, max_iter=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(np.load(tmp_path / "proba.npy"), model.predict_proba(X))


@pytest.mark.slow
def test_first_prediction_in_an_empty_cache_starts_a_helper_for_the_forward_pass(
        tmp_path):
    """A model saved, then loaded and used in a fresh process and cache: its first
    prediction starts a helper for the forward pass (on the first rows of the batch), and
    predicts what a process without it does, bit for bit."""
    from numlstm import LSTMClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 12, 2))
    y = (X[:, :, 0].mean(axis=1) > 0).astype(int)
    with pytest.warns(ConvergenceWarning):
        model = LSTMClassifier(hidden_size=8, max_iter=2, random_state=0).fit(X, y)
    numlstm.save(model, tmp_path / "model.nlstm")
    np.save(tmp_path / "X.npy", X)
    script = """
        import numpy as np
        import numlstm
        from numlstm.nn import background_compile

        model = numlstm.load("model.nlstm")
        np.save("proba.npy", model.predict_proba(np.load("X.npy")))
        print(len(background_compile._helpers))
        # The helper did its work: it ends cleanly (exit status 0).
        assert all(helper.wait(timeout=120) == 0 for _, helper in background_compile._helpers)
    """
    with_helper = _run(tmp_path, script, cache=tmp_path / "cache")
    assert with_helper.strip() == "1"
    helped = np.load(tmp_path / "proba.npy")
    without = _run(tmp_path, script, cache=tmp_path / "cache2",
                   NUMLSTM_BACKGROUND_COMPILE="0")
    assert without.strip() == "0"
    np.testing.assert_array_equal(np.load(tmp_path / "proba.npy"), helped)
    np.testing.assert_array_equal(helped, model.predict_proba(X))


@pytest.mark.slow
def test_new_stream_in_an_empty_cache_starts_a_helper_and_streams_the_same(tmp_path):
    """A fresh process and cache: a new stream starts a helper for the forward pass
    before its first chunk, and streams what this process streams, bit for bit."""
    script = """
        import numpy as np
        from numlstm import LSTM
        from numlstm.nn import background_compile

        layer = LSTM(3, 5, num_layers=2, dtype="float32", random_state=0)
        x = np.random.default_rng(0).standard_normal((2, 7, 3)).astype(np.float32)
        stream = layer.stream(batch_size=2)
        print(len(background_compile._helpers))
        np.save("streamed.npy", np.concatenate([stream(x[:, t:t + 1]) for t in range(7)],
                                               axis=1))
        assert all(helper.wait(timeout=120) == 0 for _, helper in background_compile._helpers)
    """
    assert _run(tmp_path, script, cache=tmp_path / "cache").strip() == "1"
    helped = np.load(tmp_path / "streamed.npy")
    # What this process, with kernels it compiled or loaded itself, streams.
    layer = LSTM(3, 5, num_layers=2, dtype="float32", random_state=0)
    x = np.random.default_rng(0).standard_normal((2, 7, 3)).astype(np.float32)
    stream = layer.stream(batch_size=2)
    np.testing.assert_array_equal(
        helped, np.concatenate([stream(x[:, t:t + 1]) for t in range(7)], axis=1))


def test_no_prediction_helper_once_this_process_has_a_forward_pass(monkeypatch):
    network, X, Y = _small_network()
    network.decision_function(X)  # compiles the forward pass here, if not done yet
    assert not background_compile._cache_is_cold(backward=False)
    monkeypatch.setitem(background_compile._decided, "inference", False)
    monkeypatch.setattr(background_compile, "_helpers", [])
    assert background_compile.maybe_start_inference(network.lstm, X) is False
    assert background_compile._helpers == []
    # The first prediction decided: later ones do not look again.
    monkeypatch.setattr(background_compile, "_cache_is_cold", lambda backward=True: True)
    assert background_compile.maybe_start_inference(network.lstm, X) is False


def test_predictions_and_streams_decide_at_the_layer_and_replay_its_inference_pass(
        monkeypatch):
    """An estimator's or network's prediction, a layer's ``forward(requires_grad=False)``
    and a new stream all reach the helper through the layer's inference path; a training
    forward does not. The helper would replay ``forward_states`` on the first rows."""
    calls = []
    monkeypatch.setitem(background_compile._decided, "training", True)  # decided already
    monkeypatch.setitem(background_compile._decided, "inference", False)
    monkeypatch.setattr(background_compile, "_wanted", lambda backward=True: True)
    monkeypatch.setattr(background_compile, "_start",
                        lambda *args: calls.append(args) or True)
    network, X, Y = _small_network()
    network.lstm.forward(X)  # training: decided by the training step's own flag
    assert calls == []
    network.decision_function(X)
    [(layer, method, args, kwargs)] = calls
    assert layer is network.lstm and method == "forward_states"
    assert kwargs == {"requires_grad": False}
    np.testing.assert_array_equal(args[0], X)
    # Decided once: nothing more, whoever asks next.
    network.lstm.forward(X, requires_grad=False)
    network.lstm.stream(batch_size=2)
    assert len(calls) == 1

    calls.clear()
    monkeypatch.setitem(background_compile._decided, "inference", False)
    stream = network.lstm.stream(batch_size=2)
    [(layer, method, args, kwargs)] = calls
    assert layer is network.lstm and method == "forward_states"
    assert args[0].shape == (2, 1, 3) and args[0].dtype == network.lstm.dtype
    assert not args[0].any()
    stream(X[:2, :1])  # the stream itself starts no second one
    assert len(calls) == 1

    # A ragged batch of more than 64 rows: the helper gets its first 64 rows and lengths.
    calls.clear()
    monkeypatch.setitem(background_compile._decided, "inference", False)
    rng = np.random.default_rng(1)
    X_big = rng.standard_normal((70, 4, 3)).astype(np.float32)
    lengths = rng.integers(1, 5, size=70)
    network.decision_function(X_big, lengths)
    [(layer, method, (x, states, given_lengths), kwargs)] = calls
    assert x.shape == (64, 4, 3) and states is None
    np.testing.assert_array_equal(given_lengths, lengths[:64])


def test_a_layer_trained_on_its_own_starts_a_helper_for_its_training_step(monkeypatch):
    """The research API's first ``forward`` (training) decides for the training step and
    hands the helper a forward and backward pass on the first rows; a network's step
    decides before its layer's forward pass, so the layer then starts no second one."""
    calls = []
    monkeypatch.setitem(background_compile._decided, "training", False)
    monkeypatch.setattr(background_compile, "_wanted", lambda backward=True: True)
    monkeypatch.setattr(background_compile, "_start",
                        lambda *args: calls.append(args) or True)
    network, X, Y = _small_network()
    lengths = np.array([4, 3, 4, 1, 2])
    out, _ = network.lstm.forward(X, lengths=lengths)
    [(layer, method, (x, given_lengths), kwargs)] = calls
    assert layer is network.lstm and method == "_training_step_for_compile"
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(given_lengths, lengths)
    # What the helper replays runs (here, compiled already) and leaves a backward pass.
    layer._training_step_for_compile(x, given_lengths)
    assert layer.flat_gradient.any()

    calls.clear()
    monkeypatch.setitem(background_compile._decided, "training", False)
    network.loss_and_gradient(X, Y)
    [(model, method, args, kwargs)] = calls
    assert model is network and method == "loss_and_gradient"


@pytest.mark.slow
def test_first_layer_training_step_in_an_empty_cache_starts_a_helper(tmp_path):
    """A fresh process and cache: a layer's first forward and backward pass, without a
    network, start one helper, which ends cleanly; the gradients are those this process
    computes, bit for bit."""
    script = """
        import numpy as np
        from numlstm import LSTM
        from numlstm.nn import background_compile

        layer = LSTM(3, 5, num_layers=2, bidirectional=True, dtype="float32",
                     random_state=0)
        x = np.random.default_rng(0).standard_normal((6, 7, 3)).astype(np.float32)
        out, _ = layer.forward(x, lengths=[7, 6, 5, 7, 1, 7])
        grads, dx = layer.backward(np.ones_like(out))
        print(len(background_compile._helpers))
        assert all(helper.wait(timeout=120) == 0 for _, helper in background_compile._helpers)
        np.save("gradient.npy", layer.flat_gradient)
        np.save("dx.npy", dx)
    """
    assert _run(tmp_path, script, cache=tmp_path / "cache").strip() == "1"
    # What this process, with kernels it compiled or loaded itself, computes.
    layer = LSTM(3, 5, num_layers=2, bidirectional=True, dtype="float32", random_state=0)
    x = np.random.default_rng(0).standard_normal((6, 7, 3)).astype(np.float32)
    out, _ = layer.forward(x, lengths=[7, 6, 5, 7, 1, 7])
    grads, dx = layer.backward(np.ones_like(out))
    np.testing.assert_array_equal(np.load(tmp_path / "gradient.npy"), layer.flat_gradient)
    np.testing.assert_array_equal(np.load(tmp_path / "dx.npy"), dx)


def test_deciding_never_waits_and_a_failed_start_fails_no_call(monkeypatch):
    """A prediction that finds the decision taken by another thread (or, in a forked
    child, by a thread that no longer exists there) goes on without a helper instead of
    waiting; and a layer the helper cannot be given (pickling fails) is predicted on."""
    monkeypatch.setitem(background_compile._decided, "inference", False)
    monkeypatch.setattr(background_compile, "_wanted", lambda backward=True: True)
    network, X, Y = _small_network()
    outcome = []
    with background_compile._deciding:
        thread = threading.Thread(target=lambda: outcome.append(
            background_compile.maybe_start_inference(network.lstm, X)))
        thread.start()
        thread.join(timeout=10)
        assert not thread.is_alive()
    assert outcome == [False]

    class Unpicklable:
        def __reduce__(self):
            raise ValueError("cannot be copied")

    assert background_compile._start(Unpicklable(), "forward_states", (), {}) is False


def test_threads_predicting_at_once_start_one_helper(monkeypatch):
    """The first predictions of several threads at once decide once between them, even
    when each thread is held up between testing the flag and setting it (here: a layer
    whose device takes a while to read)."""
    class SlowLayer:
        @property
        def device(self):
            time.sleep(0.05)  # every thread arrives here before any sets the flag
            return "cpu"

    calls = []
    monkeypatch.setitem(background_compile._decided, "inference", False)
    monkeypatch.setattr(background_compile, "_wanted", lambda backward=True: True)
    monkeypatch.setattr(background_compile, "_start", lambda *args: calls.append(args) or True)
    X = np.zeros((2, 3, 1), np.float32)
    barrier = threading.Barrier(8)

    def first_prediction():
        barrier.wait()
        background_compile.maybe_start_inference(SlowLayer(), X)

    threads = [threading.Thread(target=first_prediction) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1


def test_no_second_helper_while_one_runs(monkeypatch):
    monkeypatch.setattr(background_compile, "_cache_is_cold", lambda backward=True: True)
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        monkeypatch.setattr(background_compile, "_helpers", [(os.getpid(), process)])
        assert background_compile._wanted(backward=False) is False
    finally:
        process.kill()
        process.wait()
    assert background_compile._wanted(backward=False) is True


def _small_network():
    lstm = LSTM(3, 4, dtype="float32", random_state=0)
    network = LSTMNetwork(lstm, 1, random_state=0)
    X = np.random.default_rng(0).standard_normal((5, 4, 3)).astype(np.float32)
    return network, X, X[:, -1, :1].copy()


def test_no_helper_once_this_process_has_compiled_a_backward_pass(monkeypatch):
    network, X, Y = _small_network()
    network.loss_and_gradient(X, Y)  # compiles the backward pass here, if not done yet
    assert not background_compile._cache_is_cold()
    monkeypatch.setitem(background_compile._decided, "training", False)
    monkeypatch.setattr(background_compile, "_helpers", [])
    assert background_compile.maybe_start(network, X, Y, None, 0.0) is False
    assert background_compile._helpers == []
    # The first step decided: later ones do not look again.
    monkeypatch.setattr(background_compile, "_cache_is_cold", lambda backward=True: True)
    assert background_compile.maybe_start(network, X, Y, None, 0.0) is False


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setattr(background_compile, "_cache_is_cold", lambda backward=True: True)
    monkeypatch.setenv("NUMLSTM_BACKGROUND_COMPILE", "0")
    assert background_compile._wanted() is False
    monkeypatch.setenv("NUMLSTM_BACKGROUND_COMPILE", "1")
    monkeypatch.setattr(background_compile, "_usable_cores", lambda: 1)
    assert background_compile._wanted() is False
    monkeypatch.setattr(background_compile, "_usable_cores", lambda: 2)
    assert background_compile._wanted() is True


def _stand_in_helper(script):
    """A process that speaks the helper's protocol as ``script`` says, and a
    :class:`background_compile._Helper` following it."""
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    return process, background_compile._Helper(process, b"work\n")


def _name(dispatcher, argument_types):
    return f"{dispatcher}{argument_types}"


def test_fit_waits_for_a_kernel_the_helper_is_compiling_and_names_the_others(monkeypatch):
    monkeypatch.setattr(background_compile, "_kernel_name", _name)
    process, helper = _stand_in_helper("""
        import sys, time
        work = sys.stdin.readline()
        print("compiling a()", flush=True)
        time.sleep(1.0)
        print("compiled a()", flush=True)
        # What the fitting process says it compiles itself, back on the report.
        print("told", sys.stdin.readline().strip(), flush=True)
    """)
    with helper.changed:
        helper.changed.wait_for(lambda: helper.states.get("a()") == "compiling", timeout=60)
    start = time.perf_counter()
    helper.before_compile("a", ())  # the helper is compiling it: wait
    assert time.perf_counter() - start > 0.5
    assert helper.states["a()"] == "compiled"
    helper.before_compile("b", ())  # not the helper's: go on, and say so
    process.wait(timeout=60)
    with helper.changed:
        helper.changed.wait_for(lambda: helper.ended, timeout=60)
    assert helper.states["b()"] == "told"


def test_forked_child_neither_waits_for_the_helper_nor_stops_it(monkeypatch):
    monkeypatch.setattr(background_compile, "_kernel_name", _name)
    process, helper = _stand_in_helper("""
        import sys, time
        print("compiling a()", flush=True)
        time.sleep(30)
    """)
    with helper.changed:
        helper.changed.wait_for(lambda: "a()" in helper.states, timeout=60)
    monkeypatch.setattr(background_compile, "_helpers", [(os.getpid(), process)])
    real_pid = os.getpid()
    monkeypatch.setattr(background_compile.os, "getpid", lambda: real_pid + 1)
    start = time.perf_counter()
    helper.before_compile("a", ())
    assert time.perf_counter() - start < 0.5
    background_compile._stop_helpers()
    assert process.poll() is None
    monkeypatch.undo()
    process.kill()
    process.wait()
