"""The research API: a multi-layer, optionally bidirectional LSTM on NumPy arrays."""

import numbers
import threading

import numpy as np

from ._backend import Workspace, get_backend, resolve_device
from ._memory import check_fits

__all__ = ["LSTM"]

_GATES = 4

#: Work below this many bytes skips the (comparatively slow) available-memory probe.
_MEMORY_PROBE_BYTES = 256 * 2**20


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


def _check_real(array, name):
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")


class LSTM:
    """Multi-layer long short-term memory network, forward and backward on NumPy arrays.

    Computes, for every layer and direction and every timestep ``t``::

        i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
        f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
        o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = o_t * tanh(c_t)

    with the weight layout, gate order and state-dict keys of PyTorch's ``nn.LSTM``
    (``batch_first=True``), so weights move between the two unchanged.

    Parameters
    ----------
    input_size : int
        Number of features of each timestep.
    hidden_size : int
        Number of units ``H`` of each layer and direction.
    num_layers : int, default=1
        Number of stacked layers; layer ``k > 0`` reads the outputs of layer ``k - 1``.
    bidirectional : bool, default=False
        Add a second direction per layer that reads the sequence backwards; outputs of
        both directions are concatenated (forward first).
    dropout : float, default=0.0
        Probability of zeroing an element of the inputs of layers ``k > 0`` while training
        (inverted dropout, as in PyTorch).
    dtype : {np.float32, np.float64}, default=np.float32
        Float type of weights and computations.
    forget_bias : float or None, default=1.0
        Initial value of the forget-gate bias (``bias_ih`` rows ``H:2H``; the matching
        ``bias_hh`` rows start at 0). A forget gate that starts open lets gradients flow
        over long sequences from the first epoch (Gers et al., 2000; Jozefowicz et al.,
        2015). ``None`` keeps PyTorch's uniform initialisation.
    random_state : int, numpy Generator or RandomState, default=None
        Seeds weight initialisation and dropout masks.
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where the kernels run; ``"auto"`` picks CUDA when a GPU is usable.

    Attributes
    ----------
    num_directions : int
        1, or 2 when bidirectional.
    training : bool
        Whether dropout is active; see :meth:`train` and :meth:`eval`.
    flat_parameters : ndarray of shape (n_parameters,)
        Every weight in one vector; :meth:`parameters` returns views into it.
    flat_gradient : ndarray of shape (n_parameters,)
        Gradient of every weight after :meth:`backward`, laid out like ``flat_parameters``.

    Notes
    -----
    Ragged batches follow PyTorch's packed sequences: with ``lengths``, row ``b`` is
    processed for its first ``lengths[b]`` steps only; outputs are zero after that, padded
    steps leave the state untouched and receive no gradient, ``h_n``/``c_n`` hold each
    sequence's state at its own last step, and the reverse direction starts at that step.

    References
    ----------
    Hochreiter, S. and Schmidhuber, J. (1997). Long short-term memory. Neural Computation,
    9(8), 1735-1780.

    Examples
    --------
    >>> import numpy as np
    >>> from numlstm import LSTM
    >>> layer = LSTM(3, 8, num_layers=2, bidirectional=True, dtype=np.float64,
    ...              random_state=0)
    >>> x = np.random.default_rng(0).normal(size=(4, 10, 3))
    >>> out, (h_n, c_n) = layer.forward(x, lengths=[10, 7, 3, 1])
    >>> out.shape, h_n.shape
    ((4, 10, 16), (4, 4, 8))
    >>> grads, dx = layer.backward(np.ones_like(out))
    >>> grads["weight_hh_l1_reverse"].shape
    (32, 8)
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bidirectional=False,
                 dropout=0.0, dtype=np.float32, forget_bias=1.0, random_state=None,
                 device="cpu"):
        self.input_size = _check_positive_int(input_size, "input_size")
        self.hidden_size = _check_positive_int(hidden_size, "hidden_size")
        self.num_layers = _check_positive_int(num_layers, "num_layers")
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if self.bidirectional else 1
        if not isinstance(dropout, numbers.Real) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a float in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.device = resolve_device(device)
        self._backend = get_backend(self.device)
        self.training = True
        self._rng = _as_generator(random_state)
        n_params = self._count_parameters()
        self._check_memory(n_params)
        self._layout = self._build_layout()
        self.flat_parameters = np.empty(n_params, dtype=self.dtype)
        self.flat_gradient = np.zeros(n_params, dtype=self.dtype)
        self._stacked = self._stacked_views(self.flat_parameters)
        self._stacked_grad = self._stacked_views(self.flat_gradient)
        self._cache = None
        self._local = threading.local()
        self.reset_parameters(forget_bias)

    # ------------------------------------------------------------------ layout
    def _layer_input_size(self, layer):
        return self.input_size if layer == 0 else self.num_directions * self.hidden_size

    def _build_layout(self):
        """(name, shape, size, offset) of each stacked block in the flat vector.

        Per layer: W_ih (D, 4H, I_k), W_hh (D, 4H, H), b_ih (D, 4H), b_hh (D, 4H). Stacking
        the directions lets a kernel take both at once with no copy.
        """
        layout = []
        offset = 0
        H, D = self.hidden_size, self.num_directions
        for k in range(self.num_layers):
            for name, shape in (("weight_ih", (D, _GATES * H, self._layer_input_size(k))),
                                ("weight_hh", (D, _GATES * H, H)),
                                ("bias_ih", (D, _GATES * H)),
                                ("bias_hh", (D, _GATES * H))):
                size = int(np.prod(shape))
                layout.append((f"{name}_l{k}", shape, size, offset))
                offset += size
        return layout

    def _count_parameters(self):
        """Number of weights, in closed form (no loop over a possibly absurd layer count)."""
        H, D, L = self.hidden_size, self.num_directions, self.num_layers
        first = D * _GATES * H * (self.input_size + H + 2)
        others = (L - 1) * D * _GATES * H * (D * H + H + 2)
        return first + others

    def _check_memory(self, n_params):
        # A typo such as hidden_size=10**6 must fail here, not deep inside an allocation
        # or a kernel. 2**31 elements also bounds BLAS's 32-bit dimensions.
        if n_params >= 2**31:
            raise ValueError(
                f"hidden_size={self.hidden_size} with num_layers={self.num_layers} needs "
                f"{n_params} weights, more than this library supports (2**31)")
        # Weights and their gradient, plus the float64 draw of the largest block.
        H, D = self.hidden_size, self.num_directions
        largest_block = D * _GATES * H * max(self.input_size, D * H)
        check_fits(n_params * 2 * self.dtype.itemsize + 8 * largest_block,
                   f"an LSTM with hidden_size={self.hidden_size} and "
                   f"num_layers={self.num_layers}")

    def _check_activation_memory(self, batch, n_steps, requires_grad):
        # Each layer keeps gates (4H), the states each step started from (2H) and its
        # output (H) per direction while training; inference keeps one layer's worth.
        H, D = self.hidden_size, self.num_directions
        per_layer = D * batch * n_steps * H * self.dtype.itemsize
        need = per_layer * (7 * self.num_layers + 4 if requires_grad else 6)
        if need > _MEMORY_PROBE_BYTES:  # reading the system's figures costs ~50 us
            check_fits(need, f"a forward pass over {batch} sequences of {n_steps} steps")

    def _stacked_views(self, flat):
        views = {}
        for name, shape, size, offset in self._layout:
            views[name] = flat[offset:offset + size].reshape(shape)
        return views

    def _key(self, block, layer, direction):
        return f"{block}_l{layer}" + ("_reverse" if direction == 1 else "")

    def _named_views(self, stacked):
        named = {}
        for k in range(self.num_layers):
            for d in range(self.num_directions):
                for block in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    named[self._key(block, k, d)] = stacked[f"{block}_l{k}"][d]
        return named

    # --------------------------------------------------------------- parameters
    def reset_parameters(self, forget_bias=1.0):
        """Draw new weights: uniform in ``±1/sqrt(hidden_size)``, then the forget bias.

        Parameters
        ----------
        forget_bias : float or None, default=1.0
            See the class docstring.
        """
        bound = 1.0 / np.sqrt(self.hidden_size)
        # Block by block: the same numbers as one draw, without a float64 copy of them all.
        for _, _, size, offset in self._layout:
            self.flat_parameters[offset:offset + size] = self._rng.uniform(-bound, bound, size)
        if forget_bias is not None:
            H = self.hidden_size
            for k in range(self.num_layers):
                self._stacked[f"bias_ih_l{k}"][:, H:2 * H] = forget_bias
                self._stacked[f"bias_hh_l{k}"][:, H:2 * H] = 0.0

    def parameters(self):
        """Return a dict of live views into :attr:`flat_parameters`, keyed like PyTorch."""
        return self._named_views(self._stacked)

    def state_dict(self):
        """Return a dict of weight copies with the keys and shapes of ``nn.LSTM``."""
        return {name: view.copy() for name, view in self.parameters().items()}

    def load_state_dict(self, state_dict):
        """Copy weights from a dict with the keys and shapes of :meth:`state_dict`.

        Values may be NumPy arrays or anything ``np.asarray`` accepts (CPU tensors too).

        Raises
        ------
        KeyError
            If a key is missing or unexpected.
        ValueError
            If a shape differs or a value is not finite.
        """
        own = self.parameters()
        missing = sorted(set(own) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(own))
        if missing or unexpected:
            raise KeyError(f"state_dict does not match this LSTM: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        arrays = {}
        for name, view in own.items():
            value = state_dict[name]
            if hasattr(value, "detach"):  # a torch tensor
                value = value.detach().cpu().numpy()
            value = np.asarray(value)
            _check_real(value, f"state_dict[{name!r}]")
            if value.shape != view.shape:
                raise ValueError(f"state_dict[{name!r}] has shape {value.shape}, "
                                 f"expected {view.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"state_dict[{name!r}] contains NaN or infinity")
            arrays[name] = value
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
        if hasattr(x, "detach"):
            x = x.detach().cpu().numpy()
        x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise TypeError(f"x must hold numbers, got dtype {x.dtype}")
        if x.ndim != 3:
            raise ValueError(f"x must be 3-D (batch, time, input_size), got shape {x.shape}")
        if x.shape[2] != self.input_size:
            raise ValueError(f"x has {x.shape[2]} features per step, this LSTM expects "
                             f"input_size={self.input_size}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"x must have at least one sequence and one step, got shape "
                             f"{x.shape}")
        return np.ascontiguousarray(x, dtype=self.dtype)

    def _check_lengths(self, lengths, batch, n_steps):
        if lengths is None:
            return np.full(batch, n_steps, dtype=np.int64)
        lengths = np.asarray(lengths)
        if lengths.ndim != 1 or lengths.shape[0] != batch:
            raise ValueError(f"lengths must have shape ({batch},), got {lengths.shape}")
        if lengths.dtype.kind not in "iu":
            if lengths.dtype.kind != "f" or not np.all(lengths == np.round(lengths)):
                raise TypeError(f"lengths must hold integers, got dtype {lengths.dtype}")
        if lengths.min() < 1 or lengths.max() > n_steps:
            raise ValueError(f"lengths must lie in [1, {n_steps}] (the number of steps of "
                             f"x), got values in [{lengths.min()}, {lengths.max()}]")
        return np.ascontiguousarray(lengths, dtype=np.int64)

    def _check_state(self, state, name, batch):
        shape = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if state is None:
            return np.zeros(shape, dtype=self.dtype)
        if hasattr(state, "detach"):
            state = state.detach().cpu().numpy()
        state = np.asarray(state)
        _check_real(state, name)
        if state.shape != shape:
            raise ValueError(f"{name} must have shape {shape} (num_layers * num_directions, "
                             f"batch, hidden_size), got {state.shape}")
        return np.ascontiguousarray(state, dtype=self.dtype)

    # --------------------------------------------------------------- computing
    def _combined_bias(self, layer):
        return self._stacked[f"bias_ih_l{layer}"] + self._stacked[f"bias_hh_l{layer}"]

    def _dropout_mask(self, shape):
        keep = 1.0 - self.dropout
        return (self._rng.random(shape) < keep).astype(self.dtype) / self.dtype.type(keep)

    def _thread_workspaces(self):
        # Scratch is per thread: two threads running inference on one layer must not share
        # it. (forward/backward pairs share the layer's cache: train from one thread.)
        workspaces = getattr(self._local, "workspaces", None)
        if workspaces is None:
            workspaces = [Workspace() for _ in range(self.num_layers)]
            self._local.workspaces = workspaces
        return workspaces

    def forward(self, x, h0=None, c0=None, lengths=None, *, requires_grad=True):
        """Run the network over a batch of sequences.

        Parameters
        ----------
        x : array-like of shape (batch, time, input_size)
        h0, c0 : array-like of shape (num_layers * num_directions, batch, hidden_size)
            Initial states; zeros when omitted.
        lengths : array-like of int, shape (batch,), optional
            Valid steps of each sequence, in ``[1, time]``; the rest is padding.
        requires_grad : bool, default=True
            Keep what :meth:`backward` needs. ``False`` runs a cheaper inference path.

        Returns
        -------
        out : ndarray of shape (batch, time, num_directions * hidden_size)
            Last layer's hidden state at each step, zero at padded steps.
        (h_n, c_n) : ndarrays of shape (num_layers * num_directions, batch, hidden_size)
            Final hidden and cell states of every layer and direction.
        """
        x = self._check_x(x)
        batch, n_steps, _ = x.shape
        lengths = self._check_lengths(lengths, batch, n_steps)
        self._check_activation_memory(batch, n_steps, requires_grad)
        workspaces = self._thread_workspaces()
        if lengths.min() < n_steps:
            # Padding may hold anything (NaN is a common filler); the weight-gradient
            # products run over whole blocks, where 0 * NaN would leak into dW_ih.
            x = x.copy()
            for b in np.flatnonzero(lengths < n_steps):
                x[b, lengths[b]:] = 0.0
        given_state = (h0 is not None, c0 is not None)
        h0 = self._check_state(h0, "h0", batch)
        c0 = self._check_state(c0, "c0", batch)
        D = self.num_directions
        h_n = np.empty_like(h0)
        c_n = np.empty_like(c0)
        layers = []
        inp = x
        for k in range(self.num_layers):
            mask = None
            if k > 0 and self.training and self.dropout > 0.0:
                mask = self._dropout_mask(inp.shape)
                inp = inp * mask
            args = (inp, lengths, self._stacked[f"weight_ih_l{k}"],
                    self._stacked[f"weight_hh_l{k}"], self._combined_bias(k),
                    h0[k * D:(k + 1) * D], c0[k * D:(k + 1) * D])
            workspace = workspaces[k]
            if requires_grad:
                out, h_k, c_k, cache = self._backend.forward(*args, workspace=workspace)
                layers.append((inp, mask, cache))
            else:
                out, h_k, c_k = self._backend.inference(*args, workspace=workspace)
            h_n[k * D:(k + 1) * D] = h_k
            c_n[k * D:(k + 1) * D] = c_k
            inp = out
        self._cache = (
            {"layers": layers, "lengths": lengths, "shape": x.shape,
             "given_state": given_state}
            if requires_grad else None)
        return inp, (h_n, c_n)

    def backward(self, d_out, d_h_n=None, d_c_n=None):
        """Backpropagate through the last :meth:`forward` call.

        Parameters
        ----------
        d_out : array-like of shape (batch, time, num_directions * hidden_size)
            Gradient of the loss w.r.t. ``out`` (entries at padded steps are ignored).
        d_h_n, d_c_n : array-like of shape (num_layers * num_directions, batch, hidden_size)
            Gradients w.r.t. the final states; zero when omitted.

        Returns
        -------
        grads : dict
            Gradient of every weight, keyed like :meth:`state_dict` (views into
            :attr:`flat_gradient`), plus ``"h0"`` and ``"c0"`` when ``forward`` was given
            initial states.
        dx : ndarray like ``x``
            Gradient w.r.t. the input.
        """
        if self._cache is None:
            raise RuntimeError("backward() needs a preceding forward() with "
                               "requires_grad=True")
        cache = self._cache
        batch, n_steps, _ = cache["shape"]
        D, H = self.num_directions, self.hidden_size
        out_shape = (batch, n_steps, D * H)
        if hasattr(d_out, "detach"):
            d_out = d_out.detach().cpu().numpy()
        d_out = np.asarray(d_out)
        _check_real(d_out, "d_out")
        if d_out.shape != out_shape:
            raise ValueError(f"d_out must have the shape of out, {out_shape}, "
                             f"got {d_out.shape}")
        d_out = np.ascontiguousarray(d_out, dtype=self.dtype)
        d_h_n = self._check_state(d_h_n, "d_h_n", batch)
        d_c_n = self._check_state(d_c_n, "d_c_n", batch)
        d_h0 = np.empty_like(d_h_n)
        d_c0 = np.empty_like(d_c_n)
        lengths = cache["lengths"]
        workspaces = self._thread_workspaces()
        grad = self._stacked_grad
        for k in range(self.num_layers - 1, -1, -1):
            inp, mask, layer_cache = cache["layers"][k]
            d_bias = grad[f"bias_ih_l{k}"]
            dx, dh0_k, dc0_k = self._backend.backward(
                inp, lengths, self._stacked[f"weight_ih_l{k}"],
                self._stacked[f"weight_hh_l{k}"], layer_cache, d_out,
                d_h_n[k * D:(k + 1) * D], d_c_n[k * D:(k + 1) * D],
                grad[f"weight_ih_l{k}"], grad[f"weight_hh_l{k}"], d_bias,
                workspace=workspaces[k])
            grad[f"bias_hh_l{k}"][...] = d_bias
            d_h0[k * D:(k + 1) * D] = dh0_k
            d_c0[k * D:(k + 1) * D] = dc0_k
            if mask is not None:
                dx *= mask
            d_out = dx
        grads = self._named_views(grad)
        if cache["given_state"][0]:
            grads["h0"] = d_h0
        if cache["given_state"][1]:
            grads["c0"] = d_c0
        return grads, d_out

    @classmethod
    def from_torch(cls, module, **kwargs):
        """Build an LSTM with the weights of a ``torch.nn.LSTM(batch_first=True)``.

        Keyword arguments (``dtype``, ``device``, ``random_state``, ``require_batch_first``)
        and checks are those of :func:`numlstm.interop.lstm_from_torch`.

        Returns
        -------
        layer : LSTM
        """
        from .interop import lstm_from_torch

        return lstm_from_torch(module, **kwargs)

    def to_torch(self):
        """Return a ``torch.nn.LSTM(batch_first=True)`` holding copies of these weights.

        See :func:`numlstm.interop.lstm_to_torch`.
        """
        from .interop import lstm_to_torch

        return lstm_to_torch(self)

    def __getstate__(self):
        # Caches and scratch are large and rebuilt on demand; the backend is chosen again on
        # unpickling, so a model trained on a GPU loads on a machine without one.
        # The named views are rebuilt too: pickled separately they would stop sharing memory
        # with the flat vectors.
        state = self.__dict__.copy()
        for transient in ("_cache", "_local", "_backend", "_stacked", "_stacked_grad"):
            state[transient] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._stacked = self._stacked_views(self.flat_parameters)
        self._stacked_grad = self._stacked_views(self.flat_gradient)
        self._local = threading.local()
        if self.device == "cuda" and resolve_device("auto") != "cuda":
            self.device = "cpu"
        self._backend = get_backend(self.device)

    def __repr__(self):
        extra = ""
        if self.num_layers != 1:
            extra += f", num_layers={self.num_layers}"
        if self.bidirectional:
            extra += ", bidirectional=True"
        if self.dropout:
            extra += f", dropout={self.dropout}"
        return (f"LSTM({self.input_size}, {self.hidden_size}{extra}, "
                f"dtype={self.dtype.name}, device={self.device!r})")
