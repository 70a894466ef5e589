"""Speed and memory of the research API, :class:`numlstm.LSTM`.

Every benchmark is parametrised over ``(batch, timesteps, input, hidden)`` and dtype. The
kernels are compiled (or loaded from numba's on-disk cache) in ``setup``, so the timings
never include compilation; :mod:`benchmarks.bench_compile` tracks that separately.
"""

from ._configs import PARAM_NAMES, PARAMS, make_inputs, make_layer


class _LayerBench:
    params = PARAMS
    param_names = PARAM_NAMES
    # Compiling the kernels on a cold numba cache takes ~30 s per dtype on 2 cores.
    timeout = 240

    def setup(self, size, dtype):
        self.layer = make_layer(size, dtype)
        self.x, self.d_out = make_inputs(size, dtype)
        # Warm-up: compile / load every kernel these benchmarks call.
        self.layer.forward(self.x, requires_grad=False)
        self.layer.forward(self.x)
        self.layer.backward(self.d_out)


class Layer(_LayerBench):
    """Forward (inference and with caches), and a training step."""

    def time_forward(self, size, dtype):
        """Inference: ``forward(x, requires_grad=False)``."""
        self.layer.forward(self.x, requires_grad=False)

    def time_forward_train(self, size, dtype):
        """Forward keeping what ``backward`` needs."""
        self.layer.forward(self.x)

    def time_forward_backward(self, size, dtype):
        """A training step: forward, then backward of ``out.sum()`` (input gradient included)."""
        self.layer.forward(self.x)
        self.layer.backward(self.d_out)

    def time_forward_backward_without_input_gradient(self, size, dtype):
        """A training step as an estimator takes it, without the gradient w.r.t. the data
        (``backward(..., input_gradient=False)``)."""
        self.layer.forward(self.x)
        self.layer.backward(self.d_out, input_gradient=False)


class LayerMemory(_LayerBench):
    """Peak resident memory of the process through a training step."""

    def peakmem_train_step(self, size, dtype):
        self.layer.forward(self.x)
        self.layer.backward(self.d_out)


class StackedBidirectional(_LayerBench):
    """A 2-layer bidirectional LSTM: the code path of the directions and of layer k > 0."""

    params = [[(16, 20, 8, 32)], ["float32"]]

    def setup(self, size, dtype):
        self.layer = make_layer(size, dtype, num_layers=2, bidirectional=True)
        self.x, d_out = make_inputs(size, dtype)
        self.d_out = d_out.repeat(2, axis=2)
        self.layer.forward(self.x, requires_grad=False)
        self.layer.forward(self.x)
        self.layer.backward(self.d_out)

    def time_forward(self, size, dtype):
        self.layer.forward(self.x, requires_grad=False)

    def time_forward_backward(self, size, dtype):
        self.layer.forward(self.x)
        self.layer.backward(self.d_out)


class LayerOnnxRuntime:
    """ONNX Runtime's CPU ``LSTM`` operator on the same layers (numlstm's export, float32,
    numba's thread count, no spinning): the reference for ``Layer.time_forward``."""

    params = [PARAMS[0]]
    param_names = ["size"]
    timeout = 240

    def setup(self, size):
        from ._onnx_reference import inference_session, unavailable_reason

        reason = unavailable_reason()
        if reason is not None:
            raise NotImplementedError(reason)  # asv: skipped
        import numba

        layer = make_layer(size, "float32")
        self.x, _ = make_inputs(size, "float32")
        self.session = inference_session(layer, numba.get_num_threads())
        self.session.run(None, {"x": self.x})

    def time_forward(self, size):
        self.session.run(None, {"x": self.x})
