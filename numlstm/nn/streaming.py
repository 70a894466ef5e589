"""Streaming inference: feed a recurrent network a few steps at a time.

Online use (a sensor, a live feed, a token at a time) calls a network with one step or a
few, again and again, carrying the state from one call to the next. ``layer.forward(x,
h0, c0)`` can do that, but every call then re-validates its arguments and stacks the final
states of all layers into new arrays. A :class:`Stream` checks the layer once, keeps the
state of each layer between calls and runs each chunk straight through the layers'
inference path, so a call costs little more than the kernels themselves.
"""

import numpy as np

from .background_compile import maybe_start_stream as start_background_compile

__all__ = ["Stream"]


class Stream:
    """A forward-only recurrent network that remembers its state between calls.

    Made by :meth:`numlstm.LSTM.stream` (or ``GRU.stream``, ``RNN.stream``). Each call
    takes the next ``time`` steps of every sequence of the batch and returns the outputs
    at those steps; feeding a sequence in chunks gives the same outputs as feeding it
    whole (bit for bit when the chunks' lengths do not change how the batch is split
    between threads; the tests check equality to float rounding in every case).

    Parameters
    ----------
    layer : RecurrentLayer
        The network to run; its weights are read at every call, so a stream follows
        ``load_state_dict`` and training steps.
    batch_size : int, default=1
        Number of sequences fed side by side.
    states : tuple of array-likes, optional
        Initial states as :meth:`~numlstm.LSTM.forward_states` takes them (``(h0, c0)``
        for the LSTM, ``(h0,)`` otherwise), zeros when omitted.

    Notes
    -----
    Only unidirectional networks can stream: a reverse direction reads the sequence
    from its end. Dropout between layers follows the layer's mode like ``forward``
    does; call ``layer.eval()`` for deterministic outputs.

    Examples
    --------
    >>> import numpy as np
    >>> from numlstm import LSTM
    >>> layer = LSTM(input_size=3, hidden_size=8, random_state=0)
    >>> x = np.random.default_rng(0).normal(size=(1, 20, 3))
    >>> stream = layer.stream(batch_size=1)
    >>> chunks = [stream(x[:, t:t + 1]) for t in range(20)]   # one step per call
    >>> whole, _ = layer.forward(x, requires_grad=False)
    >>> bool(np.allclose(np.concatenate(chunks, axis=1), whole))
    True
    """

    def __init__(self, layer, batch_size=1, states=None):
        if layer.bidirectional:
            raise ValueError("a bidirectional network cannot stream: its reverse direction "
                             "reads each sequence from the end; use forward() on whole "
                             "sequences")
        if isinstance(batch_size, (bool, np.bool_)) or not isinstance(
                batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.layer = layer
        self.batch_size = int(batch_size)
        self._lengths = {}  # chunk length -> lengths array (all steps valid)
        # Copies: reset() goes back to these states even if the caller reuses its arrays.
        self._initial = tuple(np.array(s) for s in layer._check_states(
            states, layer._state_names(suffix="0"), self.batch_size))
        self.reset()
        # In a fresh environment the first chunk waits seconds for the forward pass to
        # compile: a second process starts on it now.
        start_background_compile(layer, self.batch_size)

    def reset(self):
        """Go back to the initial states (the start of new sequences); returns ``self``."""
        layer = self.layer
        # One array per layer and state, each (1, batch, size): what the backend takes,
        # with no slicing or stacking on each call.
        self._states = [tuple(np.array(s[k:k + 1]) for s in self._initial)
                        for k in range(layer.num_layers)]
        self.n_steps_seen = 0
        return self

    @property
    def states(self):
        """The current states, shaped like ``forward_states``' ``final_states``."""
        return tuple(np.concatenate([per_layer[i] for per_layer in self._states])
                     for i in range(self.layer.n_states))

    def _check_chunk(self, x):
        layer = self.layer
        if not isinstance(x, np.ndarray) or x.dtype != layer.dtype \
                or not x.flags.c_contiguous:
            x = layer._check_x(x)  # converts, or says what is wrong
        elif x.ndim != 3 or x.shape[2] != layer.input_size or x.shape[1] == 0:
            x = layer._check_x(x)
        if x.shape[0] != self.batch_size:
            raise ValueError(f"this stream carries {self.batch_size} sequence(s); the "
                             f"chunk has {x.shape[0]} (shape {x.shape})")
        return x

    def __call__(self, x):
        """Run the next steps.

        Parameters
        ----------
        x : array-like of shape (batch_size, time, input_size)
            The next ``time`` steps (one or more) of each sequence.

        Returns
        -------
        out : ndarray of shape (batch_size, time, output_size)
            The last layer's hidden state at each of these steps.
        """
        layer = self.layer
        x = self._check_chunk(x)
        lengths = self._lengths.get(x.shape[1])
        if lengths is None:
            if len(self._lengths) > 64:
                self._lengths.clear()
            lengths = self._lengths[x.shape[1]] = layer._full_lengths(self.batch_size,
                                                                      x.shape[1])
        workspaces, runs = layer._thread_scratch()
        lstm = layer.n_states == 2
        inp = x
        for k in range(layer.num_layers):
            mask = layer._dropout_mask(k, inp.shape)
            if mask is not None:
                inp = inp * mask
            state = self._states[k]
            out, h_k, c_k = runs.run(layer, k, inp, lengths, state[0],
                                     state[1] if lstm else None, workspaces[k])
            self._states[k] = (h_k, c_k) if lstm else (h_k,)
            inp = out
        self.n_steps_seen += x.shape[1]
        return inp

    step = __call__

    def peek(self, x):
        """Outputs of the next steps ``x`` without keeping them: the states and
        ``n_steps_seen`` stay where they were (for a tentative look ahead).

        Parameters
        ----------
        x : array-like of shape (batch_size, time, input_size)

        Returns
        -------
        out : ndarray of shape (batch_size, time, output_size)
            What calling the stream with ``x`` would return.
        """
        states, seen = list(self._states), self.n_steps_seen
        try:
            return self(x)
        finally:
            # Each call makes new state arrays, so the saved ones are untouched.
            self._states, self.n_steps_seen = states, seen

    def __repr__(self):
        return (f"Stream({self.layer!r}, batch_size={self.batch_size}, "
                f"n_steps_seen={self.n_steps_seen})")
