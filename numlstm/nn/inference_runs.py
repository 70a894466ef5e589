"""Repeated inference calls of one layer: what they share, looked up at little cost.

Online use runs a network on one step or a few, again and again: a :class:`Stream`, or
``layer.forward(x, requires_grad=False)`` on a batch of one. The kernels then take a few
microseconds, and so would the work around them done afresh on every call: summing the
biases, and having the backend find (or build) the runner for these shapes. An
:class:`InferenceRuns` keeps both, per thread of a layer, and checks only what can change
them.
"""

__all__ = ["InferenceRuns"]

#: Runners kept per thread of a layer before the oldest are dropped (one per layer, chunk
#: length and batch size in use).
_MAX_RUNNERS = 64


class InferenceRuns:
    """The kernel weights and the backend's inference runners of one layer, kept between
    calls made by one thread.

    The weights are read at every call: the summed bias is kept only while the layer's
    biases hold the same bytes, and the backend repacks ``W_ih`` and ``W_hh`` when they
    change (see :meth:`numlstm.nn.cpu_backend.CPUBackend.inference`), so the runs follow
    ``load_state_dict`` and training steps.
    """

    def __init__(self):
        self._arrays = {}  # layer index -> (the layer's views, W_ih, W_hh, b_ih, b_hh)
        self._weights = {}  # layer index -> (bias fingerprint, bias, spec)
        self._runners = {}  # (layer index, batch, steps, workspace, scope) -> runner

    def _layer_arrays(self, layer, k):
        """Layer ``k``'s weight and bias views, looked up by name once."""
        stacked = layer._stacked
        arrays = self._arrays.get(k)
        if arrays is None or arrays[0] is not stacked:
            self._weights.pop(k, None)  # its options may be views of the old arrays
            arrays = self._arrays[k] = (stacked, *(
                stacked[f"{name}_l{k}"]
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
        return arrays

    def kernel_weights(self, layer, k):
        """``layer._kernel_weights(k)`` (the bias the kernels take, and the cell's
        options), computed again only when layer ``k``'s biases change: nothing else in it
        is more than a view of the weights."""
        arrays = self._layer_arrays(layer, k)
        fingerprint = (arrays[3].tobytes(), arrays[4].tobytes())
        cached = self._weights.get(k)
        if cached is None or cached[0] != fingerprint:
            cached = self._weights[k] = (fingerprint, *layer._kernel_weights(k))
        return cached[1], cached[2]

    def run(self, layer, k, x, lengths, h0, c0, workspace):
        """Layer ``k`` of ``layer`` over ``x`` without caches; returns ``out, h_n, c_n``.

        Parameters
        ----------
        layer : RecurrentLayer
        k : int
            Which layer.
        x : ndarray (B, T, input size of layer k), C-contiguous, of the layer's dtype
        lengths : int64 ndarray (B,), C-contiguous
        h0, c0 : C-contiguous ndarrays (D, B, size)
            Layer ``k``'s initial states (``c0`` None for the cells with one state).
        workspace : Workspace
            This thread's scratch of layer ``k``.
        """
        bias, spec = self.kernel_weights(layer, k)
        arrays = self._arrays[k]
        args = (x, lengths, arrays[1], arrays[2], bias, h0, c0)
        backend = layer._backend
        # Every array a layer hands over is C-contiguous, and the dtype and sizes are the
        # layer's: the batch, the steps and the backend's scope are all that can change.
        key = (k, x.shape[0], x.shape[1], workspace, backend.inference_scope())
        run = self._runners.get(key)
        if run is None:
            if len(self._runners) >= _MAX_RUNNERS:
                self._runners.clear()
            run = self._runners[key] = backend.inference_runner(*args, workspace, spec)
        return run(*args, spec)
