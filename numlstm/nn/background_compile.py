"""Compile a network's kernels in a second process, while the first compiles too.

A first fit in a fresh environment spends nearly all its time compiling the CPU kernels,
and numba compiles one function at a time in a process (behind one lock), on one core.
So when the kernels of a training step are not in numba's on-disk cache yet, the first
step of :meth:`LSTMNetwork.loss_and_gradient <numlstm.nn.network.LSTMNetwork.loss_and_gradient>`
starts a second Python process (the helper) on a copy of the network and of that step's
batch. The helper runs the step with every kernel lookup recorded instead of compiled
(:func:`~numlstm.kernels.cpu.indirect_call.recording_compiles`), which lists the kernels
the step needs in the order it needs them, then compiles them in the opposite order,
last needed first (the backward pass's), into the same cache. numba looks in its cache
before compiling, so each process loads what the other has written: the fitting process
compiles from the front, the helper from the back, and they meet in the middle. The
helper reports each kernel it starts and ends on its standard output; the fitting
process waits for a kernel the helper is compiling rather than compile it a second time
(:func:`~numlstm.kernels.cpu.indirect_call.set_before_compile`), and names on the
helper's standard input each kernel it compiles itself, which the helper then leaves
out: the helper ends where the two meet.

A layer trained on its own (``forward`` then ``backward``, without a network) starts the
helper the same way from its first training forward pass, on a copy of the layer and of
the first rows of the batch. A first prediction works the same way: the inference path
of a recurrent layer (:meth:`forward_states
<numlstm.nn.recurrent.RecurrentLayer.forward_states>` with ``requires_grad=False``,
which every prediction of an estimator or network runs) starts a helper for the forward
pass when numba's cache holds none (a model loaded in a fresh environment), on a copy of
the layer and of the first rows of the batch (the kernels do not depend on its size). So
does a new :class:`~numlstm.nn.streaming.Stream`, on one step of zeros for its batch,
before its first chunk arrives.

Nothing depends on the helper: the fitting process compiles whatever it does not find in
the cache, so the results are the same with or without it, and the helper's cache files
are written as numba writes its own (a file is renamed into place when complete). The
helper only starts when all of this holds:

* the network (or layer) runs on the CPU, numba compiles (``NUMBA_DISABLE_JIT`` unset), this
  process may use two cores or more and runs a plain Python interpreter;
* numba's cache holds no backward pass for any layer yet (a fresh environment or cache
  directory), and this process has compiled none (for a prediction: no forward pass);
* no helper of this process is still running;
* ``NUMLSTM_BACKGROUND_COMPILE`` is not ``0`` (set it to ``0`` to turn the helper off).

A helper still running when the fitting process exits is stopped. A child forked from
the fitting process neither waits for its parent's helper nor stops it.
"""

import atexit
import io
import os
import pickle
import queue
import subprocess
import sys
import threading
import warnings

import numpy as np

from ..kernels.cpu import indirect_call

__all__ = ["maybe_start", "maybe_start_inference", "maybe_start_layer_training",
           "maybe_start_stream"]

#: The environment variable that turns the helper off when ``"0"``.
ENVIRONMENT_SWITCH = "NUMLSTM_BACKGROUND_COMPILE"
#: The longest the fitting process waits for one kernel the helper compiles, in seconds
#: (a kernel takes one or two; then the fitting process compiles it itself).
_LONGEST_WAIT = 60.0

_STARTED, _DONE = "compiling", "compiled"

_helpers = []
#: Whether this process's first training step, and its first prediction, on the CPU
#: have come: each decides once.
_decided = {"training": False, "inference": False}
#: Held while a first step or prediction decides: threads that predict at once (a
#: model served to several clients, say) must not each start a helper. Never waited for:
#: a thread that finds it taken leaves the decision to its holder, and a child forked
#: while another thread held it (which the child inherits taken) starts no helper.
_deciding = threading.Lock()
#: Rows of a prediction's batch that the helper replays: the kernels are the same for
#: any number, and a large batch would only cost the copy.
_INFERENCE_ROWS = 64


def _usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _cache_is_cold(backward=True):
    """Whether numba's cache holds no compiled backward pass (``backward=False``: forward
    pass) yet, and this process has compiled none: the layer entry that every cell's pass
    goes through serves as the witness."""
    from numba.core import config

    if config.DISABLE_JIT:
        return False
    from ..kernels.cpu.recurrent import layer_backward, layer_forward

    witness = layer_backward if backward else layer_forward
    if witness.overloads:
        return False
    try:
        # numba's own record of what its cache holds for this function.
        index = witness._cache._cache_file._index_path
    except AttributeError:  # pragma: no cover - caching off, or numba moved its internals
        return False
    return not os.path.exists(index)


def _python():
    """This interpreter's program, when it is a plain Python (not an application that
    embeds one, whose program would not take ``-m``); else None."""
    program = sys.executable
    if program and os.path.basename(program).lower().startswith("python"):
        return program
    return None


def _wanted(backward=True):
    return (os.environ.get(ENVIRONMENT_SWITCH, "1") != "0"
            and _usable_cores() >= 2
            and _python() is not None
            and not any(helper.poll() is None for owner, helper in _helpers
                        if owner == os.getpid())
            and _cache_is_cold(backward))


def _helper_environment():
    """This process's environment, with the helper itself switched off, and the folder
    this numlstm was imported from first on the module path."""
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    path = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, **{ENVIRONMENT_SWITCH: "0", "PYTHONPATH": path})


def _kernel_name(dispatcher, argument_types):
    """One line naming a compiled version, the same in both processes."""
    function = dispatcher.py_func
    return f"{function.__module__}.{function.__qualname__}{argument_types}".replace("\n", " ")


class _Helper:
    """The fitting process's side of a helper: what the helper has reported (the kernels
    it is compiling and has compiled), and what this process tells it (its work, then
    each kernel this process compiles itself, which the helper then leaves out)."""

    def __init__(self, process, payload):
        self.process = process
        # A child forked from this process inherits the hook but not the threads that
        # follow the helper: it must neither wait for the helper nor stop it.
        self.owner = os.getpid()
        self.states = {}
        self.ended = False
        self.changed = threading.Condition()
        self.outbox = queue.SimpleQueue()
        self.outbox.put(payload)
        threading.Thread(target=self._follow, daemon=True).start()
        threading.Thread(target=self._send, daemon=True).start()

    def _follow(self):
        """Read the helper's reports until it exits."""
        try:
            for line in io.TextIOWrapper(self.process.stdout, encoding="utf-8"):
                state, _, name = line.rstrip("\n").partition(" ")
                with self.changed:
                    self.states[name] = state
                    self.changed.notify_all()
        finally:
            with self.changed:
                self.ended = True
                self.changed.notify_all()
            indirect_call.set_before_compile(None)
            self.outbox.put(None)
            self.process.wait()

    def _send(self):
        """Write the outbox to the helper: its work first (which it reads once it has
        imported numlstm: this thread waits for that, not the fit), then the names of the
        kernels this process compiles."""
        try:
            with self.process.stdin as stream:
                for item in iter(self.outbox.get, None):
                    stream.write(item)
                    stream.flush()
        except OSError:  # the helper has ended
            pass

    def before_compile(self, dispatcher, argument_types):
        """Wait while the helper compiles this version (at most :data:`_LONGEST_WAIT`
        seconds); if it has not started it, tell it that this process compiles it."""
        if os.getpid() != self.owner:
            return
        name = _kernel_name(dispatcher, argument_types)
        with self.changed:
            self.changed.wait_for(lambda: self.ended or self.states.get(name) != _STARTED,
                                  timeout=_LONGEST_WAIT)
            left_to_this_process = not self.ended and name not in self.states
        if left_to_this_process:
            self.outbox.put(f"{name}\n".encode())


def _decide(kind, start):
    """Take the decision ``kind`` (``"training"`` or ``"inference"``) if no thread has:
    returns ``start()``, or False where it was taken before or is being taken now."""
    if not _deciding.acquire(blocking=False):
        return False
    try:
        if _decided[kind]:
            return False
        _decided[kind] = True
        return start()
    finally:
        _deciding.release()


def maybe_start(network, X, Y, lengths, alpha):
    """Start the helper for the training step ``network.loss_and_gradient(X, Y, lengths,
    alpha=alpha)`` when the conditions of the module docstring hold; at most once per
    process: the first training step on the CPU decides, and later steps cost one test
    of a flag. Returns whether it started one."""
    if _decided["training"] or network.lstm.device != "cpu":
        return False
    return _decide("training", lambda: _wanted() and _start(
        network, "loss_and_gradient", (X, Y, lengths), {"alpha": alpha}))


def maybe_start_layer_training(layer, x, lengths):
    """:func:`maybe_start` for a recurrent layer trained on its own (the research API's
    ``forward`` then ``backward``): the helper replays a forward and a backward pass on
    the first :data:`_INFERENCE_ROWS` rows of ``x``. An estimator's or network's step has
    decided before its layer's forward pass runs, so this costs them one test of a flag."""
    if _decided["training"] or layer.device != "cpu":
        return False
    rows = slice(0, _INFERENCE_ROWS)
    return _decide("training", lambda: _wanted() and _start(
        layer, "_training_step_for_compile", (x[rows], lengths[rows]), {}))


def maybe_start_inference(layer, x, lengths=None, batch_size=1):
    """Start the helper for the prediction ``layer.forward_states(x, lengths=lengths,
    requires_grad=False)`` (replayed on its first :data:`_INFERENCE_ROWS` rows) when the
    conditions of the module docstring hold for the forward pass; the first prediction
    or stream on the CPU decides, once, and later ones cost one test of a flag. ``x``
    None: one step of zeros for ``batch_size`` sequences (:func:`maybe_start_stream`).
    Returns whether it started one."""
    if _decided["inference"] or layer.device != "cpu":
        return False

    def start():
        if not _wanted(backward=False):
            return False
        steps = x
        if steps is None:  # a new stream: one step of zeros
            steps = np.zeros((min(batch_size, _INFERENCE_ROWS), 1, layer.input_size),
                             dtype=layer.dtype)
        rows = slice(0, _INFERENCE_ROWS)
        return _start(layer, "forward_states",
                      (steps[rows], None, None if lengths is None else lengths[rows]),
                      {"requires_grad": False})

    return _decide("inference", start)


def maybe_start_stream(layer, batch_size):
    """:func:`maybe_start_inference` for a new stream of ``batch_size`` sequences, before
    its first chunk: the helper replays one step of zeros (the kernels depend on neither
    the values nor the number of steps), built only while the decision is still open."""
    return maybe_start_inference(layer, None, batch_size=batch_size)


def _start(model, method, args, kwargs):
    """Start a helper on ``model.method(*args, **kwargs)`` (a network or a layer) and
    hook this process's compiles to it; returns whether it started."""
    try:
        payload = pickle.dumps((model, method, args, kwargs),
                               protocol=pickle.HIGHEST_PROTOCOL)
        process = subprocess.Popen([_python(), "-c", _HELPER_COMMAND], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   env=_helper_environment())
    except Exception:  # nothing depends on the helper: it must never fail the call
        return False
    _helpers.append((os.getpid(), process))
    indirect_call.set_before_compile(_Helper(process, payload).before_compile)
    return True


@atexit.register
def _stop_helpers():
    indirect_call.set_before_compile(None)
    for owner, helper in _helpers:
        if owner != os.getpid():  # a forked child's exit: the helper is its parent's
            continue
        if helper.poll() is None:
            helper.kill()
        helper.wait()


def _compile_in_reverse(work, report):
    """The helper's work: read ``(model, method, args, kwargs)`` from the binary stream
    ``work``, list the kernels that ``model.method(*args, **kwargs)`` (a training step
    or a prediction) needs and compile them last needed first, writing a line to the text
    stream ``report`` as each starts and ends. Then ``work`` names, a line each, the
    kernels the fitting process compiles itself, which are left out. Returns the
    ``(dispatcher, argument types)`` compiled, in order."""
    model, method, args, kwargs = pickle.load(work)
    left_out = set()  # what the fitting process compiles itself, as it tells

    def read_left_out():
        for line in work:
            left_out.add(line.decode("utf-8").rstrip("\n"))

    threading.Thread(target=read_left_out, daemon=True).start()
    # The kernels do nothing while recording: the rest of the step computes on arrays as
    # they were allocated.
    with indirect_call.recording_compiles() as requests, np.errstate(all="ignore"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(model, method)(*args, **kwargs)
    # Each kernel where the step first needs it (the forward and the backward pass both
    # look up the packed products), then last needed first.
    order = list(reversed(dict.fromkeys(requests)))
    compiled = []
    for dispatcher, argument_types in order:
        name = _kernel_name(dispatcher, argument_types)
        if name in left_out:
            continue
        compiled.append((dispatcher, argument_types))
        report.write(f"{_STARTED} {name}\n")
        report.flush()
        dispatcher.compile(argument_types)
        report.write(f"{_DONE} {name}\n")
        report.flush()
    return compiled


#: What the helper process runs. Not ``-m`` this module: ``numlstm.nn`` imports it
#: first, and the module would then run a second time as ``__main__``.
_HELPER_COMMAND = "from numlstm.nn.background_compile import _helper_main; _helper_main()"


def _helper_main():
    """The helper process: :func:`_compile_in_reverse` on its standard streams, then exit
    at once. The thread that reads the kernels left out is still blocked on standard
    input, which stays open while the fitting process runs; the interpreter's shutdown
    would wait on that stream's lock and abort (SIGABRT, "could not acquire lock for
    <stdin> at interpreter shutdown"). Every cache file is in place by then: numba writes
    each one as it compiles."""
    _compile_in_reverse(sys.stdin.buffer, sys.stdout)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    _helper_main()
