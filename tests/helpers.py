"""Scaffolding shared by the tests: random problems for recurrent layers, central finite
differences, and runs of PyTorch's recurrent modules to compare numlstm with.

Test modules import it as ``helpers`` (``from helpers import assert_close``), as they import
``lstm_reference``: the ``tests`` folder holds the root ``conftest.py`` and no ``__init__.py``,
so pytest puts it on ``sys.path``.

PyTorch is imported inside the functions that need it, so that this module imports without
it; the tests that use those functions skip themselves when torch is missing.
"""

import os
import subprocess
import sys
import textwrap
from collections import namedtuple

import numpy as np

import lstm_reference

#: Step of the central differences, ``(loss(a + eps) - loss(a - eps)) / (2 eps)``: for losses
#: of size 1 in float64, their truncation error (about eps**2) and rounding error (about
#: 1e-16 / eps) stay at 1e-10 or below.
FINITE_DIFFERENCE_STEP = 1e-6

#: Names of the initial states in the gradient dicts of numlstm and of the functions below.
INITIAL_STATE_NAMES = ("h0", "c0")

#: Names of the final states, used in assertion messages.
FINAL_STATE_NAMES = ("h_n", "c_n")

RecurrentProblem = namedtuple(
    "RecurrentProblem", ["x", "initial_states", "lengths", "d_out", "d_final_states"])
RecurrentProblem.__doc__ = """Inputs and output gradients of one forward and backward pass.

``initial_states`` is ``None`` or a tuple ``(h0,)`` (GRU, RNN) or ``(h0, c0)`` (LSTM);
``d_final_states`` is the matching tuple of the loss gradients with respect to the final
states, ``(d_h_n,)`` or ``(d_h_n, d_c_n)``; ``lengths`` is ``None`` or an integer array.
"""

RecurrentRun = namedtuple("RecurrentRun", ["out", "final_states", "gradients", "dx"])
RecurrentRun.__doc__ = """Results of one forward and backward pass.

``final_states`` is ``(h_n,)`` or ``(h_n, c_n)``; ``gradients`` maps numlstm's (and PyTorch's)
``state_dict`` keys, plus ``"h0"``/``"c0"`` when initial states were given, to the loss
gradients; ``dx`` is the loss gradient with respect to the input.
"""


# ------------------------------------------------------------------ random problems
def random_problem(layer, batch_size, n_steps, rng, *, weight_scale=None, initial_states=True,
                   lengths=None, dtype=np.float64):
    """Draw random inputs, initial states and output gradients for a numlstm layer.

    The draws from ``rng`` come in a fixed order, so that a seed always gives the same
    problem: the weights (only with ``weight_scale``), ``x``, the initial states (only with
    ``initial_states``), the lengths (only with ``lengths="random"``), ``d_out`` and the
    gradients of the final states.

    Parameters
    ----------
    layer : numlstm.LSTM, numlstm.GRU or numlstm.RNN
        The layer whose sizes give the shapes. Its weights are replaced when
        ``weight_scale`` is given.
    batch_size, n_steps : int
        Shape of the batch.
    rng : numpy.random.Generator
        Source of every random number.
    weight_scale : float, optional
        When given, every weight is drawn uniformly from ``[-weight_scale, weight_scale]``
        (in ``state_dict`` order) and loaded into ``layer``; larger than default weights take
        the gates out of their linear regime.
    initial_states : bool, default=True
        Whether to draw initial states (normal with standard deviation 0.5); without them
        ``RecurrentProblem.initial_states`` is ``None``.
    lengths : None, "random" or sequence of int, optional
        ``None``: full-length sequences; ``"random"``: lengths drawn uniformly from
        ``1 .. n_steps``, the first one set to ``n_steps``; a sequence: these lengths.
    dtype : numpy dtype, default=numpy.float64
        Floating type of the returned arrays.

    Returns
    -------
    RecurrentProblem
    """
    n_stacked = layer.num_layers * (2 if layer.bidirectional else 1)
    if weight_scale is not None:
        layer.load_state_dict({key: rng.uniform(-weight_scale, weight_scale, value.shape)
                               for key, value in layer.state_dict().items()})
    state_shapes = [(n_stacked, batch_size, layer.state_size)]
    if layer.n_states == 2:
        state_shapes.append((n_stacked, batch_size, layer.hidden_size))
    return _random_sequences(rng, batch_size, n_steps, layer.input_size, state_shapes,
                             layer.output_size, initial_states, lengths, dtype)


def random_reference_problem(batch_size, n_steps, input_size, hidden_size, num_layers,
                             bidirectional, ragged, with_state, seed, longest_first=True):
    """Draw weights of the reference LSTM (``tests/lstm_reference.py``) and a problem for it.

    Parameters
    ----------
    batch_size, n_steps, input_size, hidden_size, num_layers : int
        Sizes of the batch and of the LSTM.
    bidirectional : bool
        Whether the LSTM runs both directions.
    ragged : bool
        Whether to draw lengths. A ragged batch holds one full-length sequence and, with two
        sequences or more, one of a single step.
    with_state : bool
        Whether to draw initial states; without them ``h0`` and ``c0`` are ``None``.
    seed : int
        Seed of the random generator.
    longest_first : bool, default=True
        In a ragged batch, whether the full-length sequence comes first and the one-step one
        last, or the other way round.

    Returns
    -------
    tuple
        ``(params, x, h0, c0, lengths, d_out, d_h_n, d_c_n)``, all float64; ``params`` is a
        ``state_dict`` with PyTorch's keys and ``lengths`` is ``None`` or an int array.
    """
    rng = np.random.default_rng(seed)
    num_directions = 2 if bidirectional else 1
    params = lstm_reference.init_params(input_size, hidden_size, num_layers, bidirectional,
                                        rng=rng, scale=0.6)
    state_shape = (num_layers * num_directions, batch_size, hidden_size)
    problem = _random_sequences(rng, batch_size, n_steps, input_size, [state_shape] * 2,
                                num_directions * hidden_size, with_state,
                                "random" if ragged else None, np.float64)
    lengths = problem.lengths
    if ragged:
        full, one_step = (0, -1) if longest_first else (-1, 0)
        if batch_size > 1:
            lengths[one_step] = 1
        lengths[full] = n_steps
    h0, c0 = problem.initial_states if with_state else (None, None)
    return (params, problem.x, h0, c0, lengths, problem.d_out) + problem.d_final_states


def _random_sequences(rng, batch_size, n_steps, input_size, state_shapes, output_size,
                      initial_states, lengths, dtype):
    """Draw ``x``, initial states, lengths and output gradients (see :func:`random_problem`)."""
    x = rng.standard_normal((batch_size, n_steps, input_size)).astype(dtype)
    states = None
    if initial_states:
        states = tuple((0.5 * rng.standard_normal(shape)).astype(dtype)
                       for shape in state_shapes)
    if isinstance(lengths, str):
        if lengths != "random":
            raise ValueError(f"lengths must be None, 'random' or integers, got {lengths!r}")
        lengths = rng.integers(1, n_steps + 1, size=batch_size)
        lengths[0] = n_steps
    elif lengths is not None:
        lengths = np.array(lengths)
    d_out = rng.standard_normal((batch_size, n_steps, output_size)).astype(dtype)
    d_final_states = tuple(rng.standard_normal(shape).astype(dtype) for shape in state_shapes)
    return RecurrentProblem(x, states, lengths, d_out, d_final_states)


# -------------------------------------------------------------- finite differences
def central_difference(loss, array, index, eps=FINITE_DIFFERENCE_STEP):
    """Central difference of ``loss`` with respect to one entry of ``array``.

    The entry is changed in place to ``value + eps`` and ``value - eps`` and then restored,
    also when ``loss`` raises.

    Parameters
    ----------
    loss : callable
        Takes no argument and returns a float computed from ``array`` (and whatever else it
        reads), for instance a closure over a layer's live parameter views.
    array : ndarray
        The array to perturb; ``loss`` must see it, not a copy of it.
    index : tuple of int
        The entry.
    eps : float, default=FINITE_DIFFERENCE_STEP
        Step.

    Returns
    -------
    float
        ``(loss at value + eps - loss at value - eps) / (2 eps)``.
    """
    value = array[index]
    try:
        array[index] = value + eps
        loss_plus = loss()
        array[index] = value - eps
        loss_minus = loss()
    finally:
        array[index] = value
    return (loss_plus - loss_minus) / (2 * eps)


def central_difference_gradient(loss, array, eps=FINITE_DIFFERENCE_STEP):
    """Central differences of ``loss`` with respect to every entry of ``array``.

    Parameters
    ----------
    loss, array, eps
        As for :func:`central_difference`.

    Returns
    -------
    ndarray of float64, of the shape of ``array``
    """
    gradient = np.empty(array.shape)
    for index in np.ndindex(array.shape):
        gradient[index] = central_difference(loss, array, index, eps)
    return gradient


def sample_indices(rng, array, count):
    """Draw ``min(count, array.size)`` distinct entries of ``array``, as index tuples.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the draw (one call of ``rng.choice``).
    array : ndarray
        The array whose entries are drawn.
    count : int
        How many entries to draw at most.

    Returns
    -------
    list of tuple of int
    """
    flat_indices = rng.choice(array.size, size=min(array.size, count), replace=False)
    return [np.unravel_index(flat_index, array.shape) for flat_index in flat_indices]


def check_gradient_by_finite_differences(loss, array, analytic, name, indices=None, *,
                                         eps=FINITE_DIFFERENCE_STEP, rtol=1e-6, atol=1e-7):
    """Assert that an analytic gradient agrees with central differences of ``loss``.

    Each entry must satisfy ``|numeric - analytic| <= atol + rtol * |numeric|``.

    Parameters
    ----------
    loss : callable
        Takes no argument and returns a float; see :func:`central_difference`.
    array : ndarray
        The array the gradient is taken with respect to, perturbed in place and restored.
    analytic : ndarray
        The gradient to check, of the shape of ``array``. Take a copy first when it is a
        view that ``loss`` overwrites.
    name : str
        Name of ``array`` in the assertion message.
    indices : list of tuple of int, optional
        The entries to check (see :func:`sample_indices`); all of them by default.
    eps : float, default=FINITE_DIFFERENCE_STEP
        Step of the differences.
    rtol, atol : float
        Relative (to the central difference) and absolute tolerance.

    Returns
    -------
    int
        How many entries were checked.
    """
    if indices is None:
        indices = list(np.ndindex(array.shape))
    for index in indices:
        numeric = central_difference(loss, array, index, eps)
        expected = analytic[index]
        assert abs(numeric - expected) <= atol + rtol * abs(numeric), (
            f"gradient of {name} at {tuple(int(i) for i in index)}: analytic "
            f"{float(expected)!r}, central difference {float(numeric)!r} "
            f"(rtol={rtol}, atol={atol})")
    return len(indices)


# ------------------------------------------------------------------- comparisons
def assert_close(actual, expected, rtol, atol, name, dtype=None):
    """Assert that ``actual`` has the shape (and dtype) of ``expected`` and its values.

    Parameters
    ----------
    actual, expected : array_like
        The arrays; ``|actual - expected| <= atol + rtol * |expected|`` entry by entry.
    rtol, atol : float
        Relative and absolute tolerance.
    name : str
        What is compared, for the assertion message.
    dtype : numpy dtype, optional
        When given, the dtype ``actual`` must have.
    """
    actual = np.asarray(actual)
    if dtype is not None:
        assert actual.dtype == dtype, f"{name}: dtype {actual.dtype}, expected {np.dtype(dtype)}"
    assert actual.shape == np.shape(expected), (
        f"{name}: shape {actual.shape}, expected {np.shape(expected)}")
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=name)


def assert_gradients_close(actual, expected, rtol, atol, dtype=None):
    """Assert that two gradient dicts have the same keys and close values.

    Parameters
    ----------
    actual, expected : dict of str to array_like
        Gradients keyed like a ``state_dict`` (plus ``"h0"``, ``"c0"``).
    rtol, atol, dtype
        As for :func:`assert_close`.
    """
    assert set(actual) == set(expected), (
        f"gradient keys differ: {sorted(set(actual) ^ set(expected))}")
    for key in expected:
        assert_close(actual[key], expected[key], rtol, atol, key, dtype)


def assert_runs_close(actual, expected, rtol, atol, dtype=None):
    """Assert that two :class:`RecurrentRun` agree: output, final states, ``dx``, gradients.

    Parameters
    ----------
    actual, expected : RecurrentRun
        The runs to compare, for instance numlstm's and :func:`run_torch_module`'s.
    rtol, atol, dtype
        As for :func:`assert_close`.
    """
    assert_close(actual.out, expected.out, rtol, atol, "out", dtype)
    assert len(actual.final_states) == len(expected.final_states), "number of final states"
    for name, state, expected_state in zip(FINAL_STATE_NAMES, actual.final_states,
                                           expected.final_states):
        assert_close(state, expected_state, rtol, atol, name, dtype)
    assert_close(actual.dx, expected.dx, rtol, atol, "dx", dtype)
    assert_gradients_close(actual.gradients, expected.gradients, rtol, atol, dtype)


# ------------------------------------------------------- runs of numlstm and PyTorch
def run_numlstm_layer(layer, problem):
    """Forward and backward pass of a numlstm layer on a :class:`RecurrentProblem`.

    Parameters
    ----------
    layer : numlstm.LSTM, numlstm.GRU or numlstm.RNN
    problem : RecurrentProblem

    Returns
    -------
    RecurrentRun
        The layer's own arrays: the gradients are live views that the next ``backward``
        overwrites.
    """
    initial_states = problem.initial_states or (None,) * layer.n_states
    out, final_states = layer.forward(problem.x, *initial_states, lengths=problem.lengths)
    if layer.n_states == 1:
        final_states = (final_states,)
    gradients, dx = layer.backward(problem.d_out, *problem.d_final_states)
    return RecurrentRun(out, tuple(final_states), gradients, dx)


def copy_weights_to_torch(layer, module):
    """Load a numlstm layer's weights into the matching PyTorch module.

    Asserts first that both ``state_dict`` have the same keys, in the same order, and the
    same shapes.

    Parameters
    ----------
    layer : numlstm.LSTM, numlstm.GRU or numlstm.RNN
    module : torch.nn.LSTM, torch.nn.GRU or torch.nn.RNN

    Returns
    -------
    dict
        The layer's ``state_dict``.
    """
    import torch

    state = layer.state_dict()
    torch_state = module.state_dict()
    assert list(state) == list(torch_state), (list(state), list(torch_state))
    for key, value in torch_state.items():
        assert state[key].shape == tuple(value.shape), key
    module.load_state_dict({key: torch.tensor(value) for key, value in state.items()})
    return state


def run_torch_module(module, problem):
    """Forward and backward pass of a PyTorch recurrent module on a :class:`RecurrentProblem`.

    Ragged batches go through ``pack_padded_sequence`` and come back padded with zeros to
    ``n_steps``. The loss is ``sum(d_out * out) + sum(d_h_n * h_n) [+ sum(d_c_n * c_n)]``,
    whose gradients are what numlstm's ``backward(d_out, d_h_n[, d_c_n])`` returns.

    Parameters
    ----------
    module : torch.nn.LSTM, torch.nn.GRU or torch.nn.RNN
        Built with ``batch_first=True``; its parameters' dtype is used for every tensor.
    problem : RecurrentProblem
        Inputs, initial states (or ``None``), lengths (or ``None``) and output gradients.

    Returns
    -------
    RecurrentRun
        NumPy arrays; ``gradients`` has the module's parameter names, plus ``"h0"`` (and
        ``"c0"``) when ``problem`` has initial states.
    """
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    dtype = next(module.parameters()).dtype
    is_lstm = isinstance(module, torch.nn.LSTM)
    x = torch.tensor(problem.x, dtype=dtype, requires_grad=True)
    initial_states = None
    if problem.initial_states is not None:
        initial_states = tuple(torch.tensor(state, dtype=dtype, requires_grad=True)
                               for state in problem.initial_states)
    hx = initial_states if is_lstm or initial_states is None else initial_states[0]
    if problem.lengths is not None:
        packed = pack_padded_sequence(x, torch.tensor(problem.lengths), batch_first=True,
                                      enforce_sorted=False)
        packed_out, final_states = module(packed, hx)
        out, _ = pad_packed_sequence(packed_out, batch_first=True,
                                     total_length=problem.x.shape[1])
    else:
        out, final_states = module(x, hx)
    if not is_lstm:
        final_states = (final_states,)
    loss = (out * torch.tensor(problem.d_out, dtype=dtype)).sum()
    for state, d_state in zip(final_states, problem.d_final_states):
        loss = loss + (state * torch.tensor(d_state, dtype=dtype)).sum()
    module.zero_grad()
    loss.backward()
    gradients = {key: value.grad.numpy().copy() for key, value in module.named_parameters()}
    for name, state in zip(INITIAL_STATE_NAMES, initial_states or ()):
        gradients[name] = state.grad.numpy().copy()
    return RecurrentRun(out.detach().numpy(), tuple(s.detach().numpy() for s in final_states),
                        gradients, x.grad.numpy())


# ------------------------------------------------------------------- checkpoints
def interrupt_at(monkeypatch, call):
    """Raise KeyboardInterrupt at the ``call``-th loss evaluation (1-based) of every
    network; returns the one-element list counting the evaluations."""
    from numlstm.nn.network import LSTMNetwork

    original = LSTMNetwork.loss_and_gradient
    calls = [0]

    def loss_and_gradient(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == call:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LSTMNetwork, "loss_and_gradient", loss_and_gradient)
    return calls


def fit_interrupted_then_resumed(make_estimator, X, y, path, monkeypatch, call):
    """Fit with ``checkpoint=path``, interrupted (KeyboardInterrupt) at the ``call``-th loss
    evaluation (1-based), then fit again with the same checkpoint; return the resumed fit.

    ``make_estimator(checkpoint)`` builds the estimator.
    """
    import pytest

    interrupt_at(monkeypatch, call)
    with pytest.raises(KeyboardInterrupt):
        make_estimator(path).fit(X, y)
    monkeypatch.undo()
    return make_estimator(path).fit(X, y)


def run_twice_with_one_cache(tmp_path, module_name, source):
    """Run ``source`` (written as module ``module_name`` under ``tmp_path``) in two new
    processes that share a fresh numba cache; returns what each printed, split into words.

    The first process compiles and fills the cache, the second loads from it.
    """
    (tmp_path / f"{module_name}.py").write_text(textwrap.dedent(source))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(tmp_path))
    outputs = []
    for _ in range(2):
        run = subprocess.run([sys.executable, "-c", f"import {module_name}"], env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout.split())
    return outputs
