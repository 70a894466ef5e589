"""What every recurrent layer shares: multi-layer, optionally bidirectional layers on NumPy
arrays.

:class:`~numlstm.LSTM`, :class:`~numlstm.GRU` and :class:`~numlstm.RNN` share one implementation
(:class:`RecurrentLayer`): the weight layout, state dict, checks, dropout, ragged batches and
pickling are the same, and one set of kernels (:mod:`numlstm.kernels.cpu.recurrent`) runs every
cell.
"""

import functools
import numbers
import threading

import numpy as np

from .background_compile import maybe_start_inference as start_background_inference
from .background_compile import maybe_start_layer_training as start_background_training
from .backend import get_backend, resolve_device
from .inference_runs import InferenceRuns
from .layer_spec import LayerSpec
from .workspace import Workspace
from .._utils.memory import check_fits
from .torch_interop import layer_from_torch, layer_to_torch

__all__ = ["RecurrentLayer", "SingleStateLayer"]

#: Work below this many bytes skips the (comparatively slow) available-memory probe.
_MEMORY_PROBE_BYTES = 256 * 2**20

_WEIGHT_BLOCKS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
#: Names of the LSTM's peephole weights, in the order of the stacked block's second axis.
_PEEPHOLE_KEYS = ("weight_ci", "weight_cf", "weight_co")


def _as_generator(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    return np.random.default_rng(random_state)


def _check_positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return int(value)


def _check_rate(value, name):
    if not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a float in [0, 1), got {value!r}")
    return float(value)


def _check_real(array, name):
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")


_constants = {}
# Larger defaults are built per call: a whole-data pass (L-BFGS, predict) must not leave
# an array of its size behind, and per-call work is negligible next to such a pass.
_CONSTANT_MAX_BYTES = 2**20


def _constant(kind, shape, dtype):
    """``np.full(shape, value, dtype)`` for ``kind`` = ``("zeros",)`` or ``("full", value)``:
    the default states and lengths of every call, cached when small.

    The kernels only read these; nothing may write to them. They stay writeable because
    numba compiles its kernels separately for read-only arrays.
    """
    key = (kind, shape, dtype)
    array = _constants.get(key)
    if array is None:
        if kind[0] == "zeros":
            array = np.zeros(shape, dtype)
        else:
            array = np.full(shape, kind[1], dtype)
        if array.nbytes <= _CONSTANT_MAX_BYTES:
            if len(_constants) > 256:
                _constants.clear()
            _constants[key] = array
    return array


_INT64 = np.dtype(np.int64)


@functools.lru_cache(maxsize=None)
def _state_names(n_states, prefix, suffix):
    return tuple(f"{prefix}{name}{suffix}" for name in ("h", "c")[:n_states])


#: Torch float types that NumPy has; ``.numpy()`` refuses the others (bfloat16, float8).
_NUMPY_FLOAT_TENSORS = ("torch.float16", "torch.float32", "torch.float64")


def _as_numpy(value):
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu()
        if value.is_floating_point() and str(value.dtype) not in _NUMPY_FLOAT_TENSORS:
            # NumPy has no bfloat16 (nor float8): float32 holds each of their values
            # exactly, and callers cast to the layer's dtype anyway.
            value = value.float()
        value = value.numpy()
    return np.asarray(value)


def checked_state_value(value, name, like):
    """``state_dict[name]`` as an array of the shape and dtype of ``like``, or an error
    naming the key: not real numbers, another shape, or not finite once cast."""
    value = _as_numpy(value)
    _check_real(value, f"state_dict[{name!r}]")
    if value.shape != like.shape:
        raise ValueError(f"state_dict[{name!r}] has shape {value.shape}, "
                         f"expected {like.shape}")
    # Check the values the layer will hold: a float64 value beyond float32's range
    # becomes infinite in a float32 layer. The cast's overflow warning is silenced
    # because the check below reports it, naming the key.
    with np.errstate(over="ignore"):
        value = value.astype(like.dtype, copy=False)
    if not np.all(np.isfinite(value)):
        raise ValueError(f"state_dict[{name!r}] contains NaN or infinity, or values "
                         f"beyond the range of this layer's dtype {like.dtype}")
    return value


class RecurrentLayer:
    """Machinery shared by :class:`LSTM`, :class:`GRU` and :class:`RNN`; not used directly.

    Subclasses set :attr:`cell`, :attr:`n_states` and the number of gates, and give the
    torch-style ``forward``/``backward`` signatures of their cell. The state-based methods
    :meth:`forward_states` and :meth:`backward_states` take and return the states as tuples
    (``(h,)`` or ``(h, c)``), so that code can drive every cell the same way.

    Attributes
    ----------
    cell : str
        ``"lstm"``, ``"gru"`` or ``"rnn"``.
    n_states : int
        Number of state arrays: 2 for the LSTM (``h``, ``c``), 1 otherwise.
    state_size : int
        Size of the hidden state ``h`` of one layer and direction (``proj_size`` for an
        LSTM with a projection, else ``hidden_size``).
    output_size : int
        Features per step of the output: ``num_directions * state_size``.
    num_directions : int
        1, or 2 when bidirectional.
    training : bool
        Whether dropout is active; see :meth:`train` and :meth:`eval`.
    flat_parameters : ndarray of shape (n_parameters,)
        Every weight in one vector; :meth:`parameters` returns views into it.
    flat_gradient : ndarray of shape (n_parameters,)
        Gradient of every weight after a backward pass, laid out like ``flat_parameters``.
    """

    cell = None
    n_states = 1
    _n_gates = None
    _torch_name = None

    def __init__(self, input_size, hidden_size, num_layers=1, bidirectional=False,
                 dropout=0.0, dtype=np.float32, random_state=None, device="cpu",
                 input_dropout=0.0):
        self.input_size = _check_positive_int(input_size, "input_size")
        self.hidden_size = _check_positive_int(hidden_size, "hidden_size")
        self.num_layers = _check_positive_int(num_layers, "num_layers")
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if self.bidirectional else 1
        self.dropout = _check_rate(dropout, "dropout")
        self.input_dropout = _check_rate(input_dropout, "input_dropout")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.device = resolve_device(device)
        self._backend = get_backend(self.device)
        self._check_backend_supports()
        self.training = True
        self._rng = _as_generator(random_state)
        n_params = self._count_parameters()
        self._check_memory(n_params)
        self._layout = self._build_layout()
        self.flat_parameters = np.empty(n_params, dtype=self.dtype)
        self.flat_gradient = np.zeros(n_params, dtype=self.dtype)
        self._stacked = self._stacked_views(self.flat_parameters)
        self._stacked_grad = self._stacked_views(self.flat_gradient)
        self._grad_views = self._named_views(self._stacked_grad)
        self._cache = None
        self._local = threading.local()
        self._zeros = {}  # batch size -> the zero initial states

    # ------------------------------------------------------- cell-specific hooks
    @property
    def _kernel_cell(self):
        """The cell name the backends know (see :class:`numlstm.nn.layer_spec.LayerSpec`)."""
        return self.cell

    @property
    def _proj_size(self):
        return 0

    @property
    def _peephole(self):
        return False

    @property
    def state_size(self):
        return self._proj_size or self.hidden_size

    @property
    def output_size(self):
        return self.num_directions * self.state_size

    def _check_backend_supports(self):
        supports = getattr(self._backend, "supports", None)
        if supports is not None:
            problem = supports(self._kernel_cell, proj_size=self._proj_size,
                               peephole=self._peephole)
            if problem:
                raise NotImplementedError(
                    f"{type(self).__name__} on device={self.device!r}: {problem}")

    # ------------------------------------------------------------------ layout
    def _layer_input_size(self, layer):
        return self.input_size if layer == 0 else self.output_size

    def _layer_blocks(self, layer):
        """(block name, stacked shape) of the weights of one layer, in flat order.

        Per layer: W_ih (D, G*H, I_k), W_hh (D, G*H, R), b_ih (D, G*H), b_hh (D, G*H), then
        the LSTM's options. Stacking the directions lets a kernel take both at once with no
        copy.
        """
        G, H, D, R = self._n_gates, self.hidden_size, self.num_directions, self.state_size
        blocks = [("weight_ih", (D, G * H, self._layer_input_size(layer))),
                  ("weight_hh", (D, G * H, R)),
                  ("bias_ih", (D, G * H)),
                  ("bias_hh", (D, G * H))]
        if self._peephole:
            blocks.append(("weight_peephole", (D, 3, H)))
        if self._proj_size:
            blocks.append(("weight_hr", (D, self._proj_size, H)))
        return blocks

    def _build_layout(self):
        """(name, shape, size, offset) of each stacked block in the flat vector."""
        layout = []
        offset = 0
        for k in range(self.num_layers):
            for name, shape in self._layer_blocks(k):
                size = int(np.prod(shape))
                layout.append((f"{name}_l{k}", shape, size, offset))
                offset += size
        return layout

    def _per_direction_count(self, in_size):
        G, H, R, P = self._n_gates, self.hidden_size, self.state_size, self._proj_size
        return G * H * (in_size + R + 2) + (3 * H if self._peephole else 0) + P * H

    def _count_parameters(self):
        """Number of weights, in closed form (no loop over a possibly absurd layer count)."""
        D, L = self.num_directions, self.num_layers
        first = D * self._per_direction_count(self.input_size)
        others = (L - 1) * D * self._per_direction_count(self.output_size)
        return first + others

    def _check_memory(self, n_params):
        # A typo such as hidden_size=10**6 must fail here, not deep inside an allocation
        # or a kernel. 2**31 elements also bounds BLAS's 32-bit dimensions.
        name = type(self).__name__
        if n_params >= 2**31:
            raise ValueError(
                f"hidden_size={self.hidden_size} with num_layers={self.num_layers} needs "
                f"{n_params} weights, more than this library supports (2**31)")
        # Weights and their gradient, plus the float64 draw of the largest block.
        G, H, D = self._n_gates, self.hidden_size, self.num_directions
        largest_block = D * G * H * max(self.input_size, self.output_size)
        check_fits(n_params * 2 * self.dtype.itemsize + 8 * largest_block,
                   f"an {name} with hidden_size={self.hidden_size} and "
                   f"num_layers={self.num_layers}")

    @functools.cached_property
    def _activation_bytes(self):
        """Bytes of activations per step and sequence: ``(inference, training)``."""
        # Per step, row and direction each layer keeps while training: the gates, the
        # states each step started from, its output (and the projection's inputs); the
        # backward pass adds the gate gradients. Inference keeps one layer's worth, without
        # the gates for the plain LSTM (it infers step by step).
        G, H, R, D = self._n_gates, self.hidden_size, self.state_size, self.num_directions
        P = self._proj_size
        per_layer = G * H + 2 * R + (H if self.cell in ("lstm", "gru") else 0) + (H if P else 0)
        backward = G * H * (2 if self.cell == "gru" else 1) + (R if P else 0)
        plain_lstm = self.cell == "lstm" and not (P or self._peephole)
        training = per_layer * self.num_layers + backward
        inference = (0 if plain_lstm else G * H) + 2 * R
        return tuple(D * elements * self.dtype.itemsize for elements in (inference, training))

    def _check_activation_memory(self, batch, n_steps, requires_grad):
        need = batch * n_steps * self._activation_bytes[bool(requires_grad)]
        if need > _MEMORY_PROBE_BYTES:  # reading the system's figures costs ~50 us
            what = f"a forward pass over {batch} sequences of {n_steps} steps"
            # On a GPU the activations live there, and each layer's output comes back too.
            check_fits(need, what)
            if self.device == "cuda":
                check_fits(need, what, device="cuda")

    def _stacked_views(self, flat):
        views = {}
        for name, shape, size, offset in self._layout:
            views[name] = flat[offset:offset + size].reshape(shape)
        return views

    def _key(self, block, layer, direction):
        return f"{block}_l{layer}" + ("_reverse" if direction == 1 else "")

    def _named_views(self, stacked):
        # Key order is PyTorch's: per layer and direction, W_ih, W_hh, b_ih, b_hh, then
        # (our own) the peepholes, then W_hr.
        named = {}
        for k in range(self.num_layers):
            for d in range(self.num_directions):
                for block in _WEIGHT_BLOCKS:
                    named[self._key(block, k, d)] = stacked[f"{block}_l{k}"][d]
                if self._peephole:
                    for g, key in enumerate(_PEEPHOLE_KEYS):
                        named[self._key(key, k, d)] = stacked[f"weight_peephole_l{k}"][d, g]
                if self._proj_size:
                    named[self._key("weight_hr", k, d)] = stacked[f"weight_hr_l{k}"][d]
        return named

    # --------------------------------------------------------------- parameters
    def _draw_parameters(self):
        bound = 1.0 / np.sqrt(self.hidden_size)
        # Block by block: the same numbers as one draw, without a float64 copy of them all.
        for _, _, size, offset in self._layout:
            self.flat_parameters[offset:offset + size] = self._rng.uniform(-bound, bound, size)

    def reset_parameters(self):
        """Draw new weights: uniform in ``±1/sqrt(hidden_size)``, as PyTorch does."""
        self._draw_parameters()

    def parameters(self):
        """Return a dict of live views into :attr:`flat_parameters`, keyed like PyTorch."""
        return self._named_views(self._stacked)

    def state_dict(self):
        """Return a dict of weight copies with the keys and shapes of the PyTorch module."""
        return {name: view.copy() for name, view in self.parameters().items()}

    def load_state_dict(self, state_dict):
        """Copy weights from a dict with the keys and shapes of :meth:`state_dict`.

        Values may be NumPy arrays or anything ``np.asarray`` accepts (torch tensors too,
        bfloat16 ones included); they are cast to the layer's dtype.

        Raises
        ------
        KeyError
            If a key is missing or unexpected.
        ValueError
            If a shape differs or a value is not finite once cast to the layer's dtype
            (NaN, infinity, or a value beyond its range, such as ``1e39`` for float32).
        """
        own = self.parameters()
        missing = sorted(set(own) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(own))
        if missing or unexpected:
            raise KeyError(f"state_dict does not match this {type(self).__name__}: missing "
                           f"keys {missing}, unexpected keys {unexpected}")
        arrays = {name: checked_state_value(state_dict[name], name, view)
                  for name, view in own.items()}
        for name, view in own.items():
            view[...] = arrays[name]

    def train(self, mode=True):
        """Switch dropout on (``mode=True``) or off; returns ``self``."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Switch dropout off; returns ``self``."""
        return self.train(False)

    # ------------------------------------------------------------------ checks
    def _check_x(self, x):
        if (type(x) is np.ndarray and x.dtype == self.dtype and x.flags.c_contiguous
                and x.ndim == 3 and x.shape[2] == self.input_size and x.size):
            return x  # already what the kernels take: the usual call, checked cheaply
        x = _as_numpy(x)
        if x.dtype.kind not in "fiub":
            raise TypeError(f"x must hold numbers, got dtype {x.dtype}")
        if x.ndim != 3:
            raise ValueError(f"x must be 3-D (batch, time, input_size), got shape {x.shape}")
        if x.shape[2] != self.input_size:
            raise ValueError(f"x has {x.shape[2]} features per step, this "
                             f"{type(self).__name__} expects input_size={self.input_size}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"x must have at least one sequence and one step, got shape "
                             f"{x.shape}")
        return np.ascontiguousarray(x, dtype=self.dtype)

    def _check_lengths(self, lengths, batch, n_steps):
        """Validated ``lengths`` as int64 and whether any sequence is shorter than ``x``."""
        if lengths is None:
            return self._full_lengths(batch, n_steps), False
        lengths = np.asarray(lengths)
        if lengths.ndim != 1 or lengths.shape[0] != batch:
            raise ValueError(f"lengths must have shape ({batch},), got {lengths.shape}")
        if lengths.dtype.kind not in "iu":
            if lengths.dtype.kind != "f" or not np.all(lengths == np.round(lengths)):
                raise TypeError(f"lengths must hold integers, got dtype {lengths.dtype}")
        shortest, longest = lengths.min(), lengths.max()
        if shortest < 1 or longest > n_steps:
            raise ValueError(f"lengths must lie in [1, {n_steps}] (the number of steps of "
                             f"x), got values in [{shortest}, {longest}]")
        return np.ascontiguousarray(lengths, dtype=np.int64), bool(shortest < n_steps)

    @staticmethod
    def _full_lengths(batch, n_steps):
        """The ``lengths`` of a batch without padding (cached; read-only by contract)."""
        return _constant(("full", n_steps), (batch,), _INT64)

    def _state_sizes(self):
        """Size of each state per layer and direction: ``(R,)`` or ``(R, H)``."""
        return (self.state_size,)

    def _state_names(self, prefix="", suffix=""):
        return _state_names(self.n_states, prefix, suffix)

    def _check_state(self, state, name, batch, size):
        shape = (self.num_layers * self.num_directions, batch, size)
        if state is None:
            return _constant(("zeros",), shape, self.dtype)
        state = _as_numpy(state)
        _check_real(state, name)
        if state.shape != shape:
            what = "proj_size" if size != self.hidden_size else "hidden_size"
            raise ValueError(f"{name} must have shape {shape} (num_layers * num_directions, "
                             f"batch, {what}), got {state.shape}")
        return np.ascontiguousarray(state, dtype=self.dtype)

    def _check_states(self, states, names, batch):
        if states is None:
            states = (None,) * self.n_states
        states = tuple(states)
        if len(states) != self.n_states:
            raise ValueError(f"{type(self).__name__} has {self.n_states} state(s) "
                             f"{names}, got {len(states)}")
        for state in states:
            if state is not None:
                break
        else:  # the usual call: zeros
            return self._zero_states(batch)
        return tuple(self._check_state(s, n, batch, size)
                     for s, n, size in zip(states, names, self._state_sizes()))

    def _zero_states(self, batch):
        """The initial states of a call that gives none (shared, read-only by contract)."""
        zeros = self._zeros.get(batch)
        if zeros is None:
            zeros = tuple(_constant(("zeros",), (self.num_layers * self.num_directions, batch,
                                                 size), self.dtype)
                          for size in self._state_sizes())
            # Kept when _constant shares them too; large ones are made on each call.
            if all(z.nbytes <= _CONSTANT_MAX_BYTES for z in zeros):
                if len(self._zeros) > 64:
                    self._zeros.clear()
                self._zeros[batch] = zeros
        return zeros

    # --------------------------------------------------------------- computing
    def _kernel_weights(self, layer):
        """``bias`` and the :class:`~numlstm.nn.layer_spec.LayerSpec` the kernels take."""
        bias = (self._stacked[f"bias_ih_l{layer}"] + self._stacked[f"bias_hh_l{layer}"])
        return bias, LayerSpec(self._kernel_cell)

    def _dropout_mask(self, k, shape):
        """The dropout mask of layer ``k``'s input of this ``shape`` while training (from
        the layer's random stream), or None."""
        rate = self.dropout if k > 0 else self.input_dropout
        if not (self.training and rate > 0.0):
            return None
        keep = 1.0 - rate
        return (self._rng.random(shape) < keep).astype(self.dtype) / self.dtype.type(keep)

    def _thread_workspaces(self):
        """This thread's scratch, one :class:`Workspace` per layer."""
        return self._thread_scratch()[0]

    def _thread_scratch(self):
        """This thread's workspaces (one per layer) and
        :class:`~numlstm.nn.inference_runs.InferenceRuns`."""
        # Scratch is per thread: two threads running inference on one layer must not share
        # it. (forward/backward pairs share the layer's cache: train from one thread.)
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = ([Workspace() for _ in range(self.num_layers)],
                                             InferenceRuns())
        return scratch

    def forward_states(self, x, states=None, lengths=None, *, requires_grad=True):
        """Run the network over a batch of sequences, with the states as one tuple.

        Parameters
        ----------
        x : array-like of shape (batch, time, input_size)
        states : tuple of array-likes, optional
            Initial states, ``(h0,)`` or, for the LSTM, ``(h0, c0)``, each of shape
            (num_layers * num_directions, batch, size); an entry (or the whole tuple)
            ``None`` means zeros.
        lengths : array-like of int, shape (batch,), optional
            Valid steps of each sequence, in ``[1, time]``; the rest is padding.
        requires_grad : bool, default=True
            Keep what :meth:`backward_states` needs. ``False`` runs a cheaper inference
            path.

        Returns
        -------
        out : ndarray of shape (batch, time, output_size)
            Last layer's hidden state at each step, zero at padded steps.
        final_states : tuple of ndarrays
            Final states of every layer and direction, like ``states``.
        """
        given_x, given_lengths = x, lengths
        x = self._check_x(x)
        batch, n_steps, _ = x.shape
        lengths, padded = self._check_lengths(lengths, batch, n_steps)
        self._check_activation_memory(batch, n_steps, requires_grad)
        if requires_grad:
            # backward reads x and lengths again: private copies, so that a caller who
            # refills its arrays (a buffer for the next batch) before calling backward
            # gets the gradients of what forward saw. Small next to the gate caches.
            if not padded and (x is given_x or not x.flags.owndata):
                x = x.copy()
            if given_lengths is not None and lengths is given_lengths:
                lengths = lengths.copy()
        # A first training step or prediction in a fresh environment compiles for
        # seconds: a second process compiles part of it alongside.
        if requires_grad:
            start_background_training(self, x, lengths)
        else:
            start_background_inference(self, x, lengths)
        workspaces, runs = self._thread_scratch()
        if padded:
            # Padding may hold anything (NaN is a common filler); the weight-gradient
            # products run over whole blocks, where 0 * NaN would leak into dW_ih.
            x = x.copy()
            for b in np.flatnonzero(lengths < n_steps):
                x[b, lengths[b]:] = 0.0
        states = (None,) * self.n_states if states is None else tuple(states)
        given = tuple(s is not None for s in states) if requires_grad else None
        states = self._check_states(states, self._state_names(suffix="0"), batch)
        D = self.num_directions
        single = self.num_layers == 1
        # One layer's final states are the network's: no copy into a stacked array.
        finals = None if single else tuple(np.empty_like(s) for s in states)
        layers = []
        inp = x
        for k in range(self.num_layers):
            mask = self._dropout_mask(k, inp.shape)
            if mask is not None:
                inp = inp * mask
            # One layer takes the states whole, not a slice of them.
            h0_k = states[0] if single else states[0][k * D:(k + 1) * D]
            c0_k = None
            if self.n_states == 2:
                c0_k = states[1] if single else states[1][k * D:(k + 1) * D]
            if requires_grad:
                bias, spec = self._kernel_weights(k)
                out, h_k, c_k, cache = self._backend.forward(
                    inp, lengths, self._stacked[f"weight_ih_l{k}"],
                    self._stacked[f"weight_hh_l{k}"], bias, h0_k, c0_k,
                    workspace=workspaces[k], spec=spec)
                layers.append((inp, mask, cache))
            else:
                out, h_k, c_k = runs.run(self, k, inp, lengths, h0_k, c0_k, workspaces[k])
            if single:
                finals = (h_k, c_k) if self.n_states == 2 else (h_k,)
            else:
                finals[0][k * D:(k + 1) * D] = h_k
                if self.n_states == 2:
                    finals[1][k * D:(k + 1) * D] = c_k
            inp = out
        self._cache = (
            {"layers": layers, "lengths": lengths, "shape": x.shape, "given_state": given}
            if requires_grad else None)
        return inp, finals

    def _training_step_for_compile(self, x, lengths):
        """A forward and a backward pass on ``x``: what the compile helper of
        :mod:`numlstm.nn.background_compile` replays to compile a first training step."""
        out, _ = self.forward_states(x, lengths=lengths)
        self.backward_states(np.ones_like(out))

    def stream(self, batch_size=1, states=None):
        """A :class:`~numlstm.nn.streaming.Stream` that feeds this network a few steps
        at a time, keeping its state between calls (online inference).

        Parameters
        ----------
        batch_size : int, default=1
            Number of sequences fed side by side.
        states : tuple of array-likes, optional
            Initial states, as :meth:`forward_states` takes them; zeros when omitted.

        Returns
        -------
        Stream
            Call it with chunks of shape (batch_size, time, input_size).
        """
        from .streaming import Stream

        return Stream(self, batch_size, states)

    def backward_states(self, d_out, d_states=None, *, input_gradient=True):
        """Backpropagate through the last forward pass, with the state gradients as a tuple.

        Parameters
        ----------
        d_out : array-like of shape (batch, time, output_size)
            Gradient of the loss w.r.t. ``out`` (entries at padded steps are ignored).
        d_states : tuple of array-likes, optional
            Gradients w.r.t. the final states, like the ``final_states`` of
            :meth:`forward_states`; an entry (or the whole tuple) ``None`` means zeros.
        input_gradient : bool, default=True
            Whether to compute ``dx``. Training a layer that reads the data itself needs
            only the weight gradients: ``False`` skips the bottom layer's product
            ``d_gates @ W_ih`` (about a tenth of the backward pass's arithmetic when the
            inputs are as wide as the hidden state) and returns ``dx=None``.

        Returns
        -------
        grads : dict
            Gradient of every weight, keyed like :meth:`state_dict` (views into
            :attr:`flat_gradient`), plus ``"h0"`` (and ``"c0"``) for the initial states
            the forward pass was given.
        dx : ndarray like ``x``, or None
            Gradient w.r.t. the input (``None`` with ``input_gradient=False``).
        """
        if self._cache is None:
            raise RuntimeError("backward() needs a preceding forward() with "
                               "requires_grad=True")
        cache = self._cache
        batch, n_steps, _ = cache["shape"]
        out_shape = (batch, n_steps, self.output_size)
        d_out = _as_numpy(d_out)
        _check_real(d_out, "d_out")
        if d_out.shape != out_shape:
            raise ValueError(f"d_out must have the shape of out, {out_shape}, "
                             f"got {d_out.shape}")
        d_out = np.ascontiguousarray(d_out, dtype=self.dtype)
        d_states = self._check_states(d_states, self._state_names("d_", "_n"), batch)
        d_initial = tuple(np.empty_like(s) for s in d_states)
        D = self.num_directions
        lengths = cache["lengths"]
        workspaces = self._thread_workspaces()
        grad = self._stacked_grad
        for k in range(self.num_layers - 1, -1, -1):
            inp, mask, layer_cache = cache["layers"][k]
            d_bias = grad[f"bias_ih_l{k}"]
            extra = {}
            if self.cell == "gru":
                extra["bias_hh"] = grad[f"bias_hh_l{k}"]
            if self._peephole:
                extra["peephole"] = grad[f"weight_peephole_l{k}"]
            if self._proj_size:
                extra["W_hr"] = grad[f"weight_hr_l{k}"]
            d_c_k = d_states[1][k * D:(k + 1) * D] if self.n_states == 2 else None
            dx, dh0_k, dc0_k = self._backend.backward(
                inp, lengths, self._stacked[f"weight_ih_l{k}"],
                self._stacked[f"weight_hh_l{k}"], layer_cache, d_out,
                d_states[0][k * D:(k + 1) * D], d_c_k,
                grad[f"weight_ih_l{k}"], grad[f"weight_hh_l{k}"], d_bias,
                workspace=workspaces[k], grads=extra, input_gradient=input_gradient or k > 0)
            if self.cell != "gru":
                # b_ih and b_hh enter the same sum: their gradients are equal.
                grad[f"bias_hh_l{k}"][...] = d_bias
            d_initial[0][k * D:(k + 1) * D] = dh0_k
            if self.n_states == 2:
                d_initial[1][k * D:(k + 1) * D] = dc0_k
            if mask is not None and dx is not None:
                dx *= mask
            d_out = dx
        grads = dict(self._grad_views)  # a new dict, the same views into flat_gradient
        for name, given, value in zip(self._state_names(suffix="0"), cache["given_state"],
                                      d_initial):
            if given:
                grads[name] = value
        return grads, d_out

    @classmethod
    def from_torch(cls, module, **kwargs):
        """Build a layer with the weights of the PyTorch module of the same name
        (``torch.nn.GRU`` for :class:`GRU`, ``torch.nn.RNN`` for :class:`RNN`).

        Keyword arguments (``dtype``, ``device``, ``random_state``, ``require_batch_first``)
        and checks are those of :func:`numlstm.io.pytorch.lstm_from_torch`.

        Returns
        -------
        layer : instance of this class
        """
        return layer_from_torch(module, cls, **kwargs)

    def to_torch(self):
        """Return the PyTorch module of the same name (``batch_first=True``) holding copies
        of these weights; see :func:`numlstm.io.pytorch.lstm_to_torch`."""
        return layer_to_torch(self, type(self))

    def __getstate__(self):
        # Caches and scratch are large and rebuilt on demand; the backend is chosen again on
        # unpickling, so a model trained on a GPU loads on a machine without one.
        # The named views are rebuilt too: pickled separately they would stop sharing memory
        # with the flat vectors.
        state = self.__dict__.copy()
        for transient in ("_cache", "_local", "_backend", "_stacked", "_stacked_grad",
                          "_grad_views", "_zeros"):
            state[transient] = None
        state.pop("_activation_bytes", None)  # a cached property, computed again
        return state

    def __setstate__(self, state):
        state.setdefault("input_dropout", 0.0)  # pickled before the option existed
        self.__dict__.update(state)
        self._stacked = self._stacked_views(self.flat_parameters)
        self._stacked_grad = self._stacked_views(self.flat_gradient)
        self._grad_views = self._named_views(self._stacked_grad)
        self._local = threading.local()
        self._zeros = {}
        if self.device == "cuda" and resolve_device("auto") != "cuda":
            self.device = "cpu"
        self._backend = get_backend(self.device)

    def _repr_extra(self):
        return ""

    def __repr__(self):
        extra = ""
        if self.num_layers != 1:
            extra += f", num_layers={self.num_layers}"
        extra += self._repr_extra()
        if self.bidirectional:
            extra += ", bidirectional=True"
        if self.dropout:
            extra += f", dropout={self.dropout}"
        if self.input_dropout:
            extra += f", input_dropout={self.input_dropout}"
        return (f"{type(self).__name__}({self.input_size}, {self.hidden_size}{extra}, "
                f"dtype={self.dtype.name}, device={self.device!r})")


class SingleStateLayer(RecurrentLayer):
    """The torch-style ``forward``/``backward`` of the cells with one state (GRU, RNN)."""

    def forward(self, x, h0=None, lengths=None, *, requires_grad=True):
        """Run the network over a batch of sequences.

        Parameters
        ----------
        x : array-like of shape (batch, time, input_size)
        h0 : array-like of shape (num_layers * num_directions, batch, hidden_size), optional
            Initial hidden state; zeros when omitted.
        lengths : array-like of int, shape (batch,), optional
            Valid steps of each sequence, in ``[1, time]``; the rest is padding.
        requires_grad : bool, default=True
            Keep what :meth:`backward` needs. ``False`` runs a cheaper inference path.

        Returns
        -------
        out : ndarray of shape (batch, time, num_directions * hidden_size)
            Last layer's hidden state at each step, zero at padded steps.
        h_n : ndarray shaped like ``h0``
            Final hidden state of every layer and direction.
        """
        out, (h_n,) = self.forward_states(x, (h0,), lengths, requires_grad=requires_grad)
        return out, h_n

    def backward(self, d_out, d_h_n=None, *, input_gradient=True):
        """Backpropagate through the last :meth:`forward` call.

        Parameters
        ----------
        d_out : array-like of shape (batch, time, num_directions * hidden_size)
            Gradient of the loss w.r.t. ``out`` (entries at padded steps are ignored).
        d_h_n : array-like shaped like ``h_n``, optional
            Gradient w.r.t. the final state; zero when omitted.
        input_gradient : bool, default=True
            Whether to compute ``dx``; ``False`` returns ``None`` in its place and skips
            its product (see :meth:`backward_states`).

        Returns
        -------
        grads : dict
            Gradient of every weight, keyed like :meth:`state_dict` (views into
            :attr:`flat_gradient`), plus ``"h0"`` when ``forward`` was given ``h0``.
        dx : ndarray like ``x``, or None
            Gradient w.r.t. the input.
        """
        return self.backward_states(d_out, (d_h_n,), input_gradient=input_gradient)
