"""A network's outputs for sequences that arrive a few steps at a time.

:class:`NetworkStream` joins a :class:`~numlstm.nn.streaming.Stream` over the recurrent
layers (their states carried from call to call) with what the dense layer reads: the last
output, or a :class:`~numlstm.nn.readout.RunningPool` for the pooled readouts. Its
outputs after each call are those of :meth:`LSTMNetwork.predict` on the whole prefix fed
so far, without running the prefix again.
"""

from .readout import RunningPool
from .streaming import Stream

__all__ = ["NetworkStream"]


class NetworkStream:
    """Outputs of an :class:`~numlstm.nn.network.LSTMNetwork` on streamed sequences.

    Made by :meth:`LSTMNetwork.stream`. :meth:`feed` runs the next steps and keeps the
    recurrent states; :meth:`predict` gives the network's outputs for everything fed
    so far, optionally followed by a few ``pending`` steps that are run but not kept
    (a caller grouping steps into patches feeds the incomplete last patch this way).

    Parameters
    ----------
    network : LSTMNetwork
        A unidirectional network; its weights are read at every call.
    batch_size : int, default=1
        Number of sequences fed side by side.
    """

    def __init__(self, network, batch_size=1):
        if network.lstm.bidirectional:
            raise ValueError("a bidirectional network cannot stream: its reverse direction "
                             "reads each sequence from the end; predict on whole "
                             "sequences instead")
        self.network = network
        self._steps = Stream(network.lstm, batch_size)
        self.batch_size = self._steps.batch_size
        self.reset()

    def reset(self):
        """Forget the steps fed so far (start new sequences); returns ``self``."""
        self._steps.reset()
        net = self.network
        self._pool = None
        if not net.sequence_output and net.readout != "last":
            self._pool = RunningPool(net.readout, self.batch_size, net.lstm.output_size)
        self._last = None
        return self

    @property
    def n_steps_seen(self):
        """Number of steps fed (and kept) since the start or the last :meth:`reset`."""
        return self._steps.n_steps_seen

    def feed(self, x):
        """Run and keep the next steps.

        Parameters
        ----------
        x : ndarray of shape (batch_size, time, input_size)
            The next steps of each sequence, in the network's dtype.

        Returns
        -------
        out : ndarray of shape (batch_size, time, n_outputs) or None
            A sequence-output network's activated outputs at these steps (float64);
            None for a sequence-to-one network (see :meth:`predict`).
        """
        net = self.network
        with net.inference():
            out = self._steps(x)
        if net.sequence_output:
            return net.activate(net.dense(out))
        if self._pool is not None:
            self._pool.add(out)
        self._last = out[:, -1].copy()  # the output array may be scratch of the layer
        return None

    def predict(self, pending=None, raw=False):
        """A sequence-to-one network's outputs for the steps fed so far.

        Parameters
        ----------
        pending : ndarray of shape (batch_size, time, input_size), optional
            Steps that follow the ones fed; they count for this output only and are
            not kept.
        raw : bool, default=False
            Return the raw outputs (logits) instead of the activated ones.

        Returns
        -------
        out : ndarray of shape (batch_size, n_outputs)
            What :meth:`LSTMNetwork.predict` (or ``decision_function`` for ``raw``)
            gives on the whole prefix, to float rounding.
        """
        net = self.network
        if net.sequence_output:
            raise ValueError("a sequence-output network gives its outputs step by step: "
                             "they are what feed() returns")
        last, extra = self._last, None
        if pending is not None and pending.shape[1]:
            with net.inference():
                extra = self._steps.peek(pending)
            last = extra[:, -1]
        if last is None:
            raise ValueError("no steps have been fed yet: feed at least one step before "
                             "predicting")
        features = last if self._pool is None else self._pool.features(extra)
        out = net.dense(features)
        return out if raw else net.activate(out)

    def __repr__(self):
        return (f"NetworkStream(batch_size={self.batch_size}, "
                f"n_steps_seen={self.n_steps_seen})")
