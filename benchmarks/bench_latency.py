"""Latency of small inference calls: streaming / online use, one or two sequences at a time.

``forward`` on a whole short call against :class:`numlstm.nn.streaming.Stream` feeding the
same steps, and ONNX Runtime's ``LSTM`` operator on the same weights where ``onnxruntime``
is installed (asv skips it otherwise). Sizes are ``(batch, time, input, hidden)``.
:class:`EstimatorStream` times a fitted classifier's online predictions
(``clf.stream().predict_proba``) against ``predict_proba`` on a whole short sequence.
"""

import numpy as np

from ._configs import make_layer
from ._onnx_reference import inference_session, unavailable_reason

#: Batch 1 and 2, one step, ten steps and a long call, on a small model.
LATENCY_SIZES = [(batch, steps, 8, 64) for batch in (1, 2) for steps in (1, 10, 200)]


class _Latency:
    params = [LATENCY_SIZES]
    param_names = ["size"]

    def setup(self, size):
        batch, steps, n_inputs, _ = size
        self.layer = make_layer(size, "float32")
        self.x = np.random.default_rng(0).standard_normal(
            (batch, steps, n_inputs)).astype(np.float32)


class Latency(_Latency):
    """numlstm: ``forward(x, requires_grad=False)`` and a stream's call on the same steps."""

    def setup(self, size):
        super().setup(size)
        self.stream = self.layer.stream(batch_size=size[0])
        self.layer.forward(self.x, requires_grad=False)  # compile / load the kernels
        self.stream(self.x)

    def time_forward(self, size):
        self.layer.forward(self.x, requires_grad=False)

    def time_stream(self, size):
        self.stream(self.x)


class LatencyOnnxRuntime(_Latency):
    """ONNX Runtime's CPU ``LSTM`` operator on numlstm's weights (2 threads, no spinning)."""

    def setup(self, size):
        reason = unavailable_reason()
        if reason is not None:
            raise NotImplementedError(reason)  # asv: skipped
        import numba

        super().setup(size)
        self.session = inference_session(self.layer, numba.get_num_threads())
        self.session.run(None, {"x": self.x})

    def time_forward(self, size):
        self.session.run(None, {"x": self.x})


class EstimatorStream:
    """A fitted ``LSTMClassifier`` (64 units, 8 channels): one call of its stream's
    ``predict_proba`` with the next steps, against ``predict_proba`` on the whole call."""

    params = [[(1, 1), (2, 1), (1, 10)]]
    param_names = ["batch_steps"]

    def setup(self, batch_steps):
        import inspect
        import warnings

        from numlstm import LSTMClassifier

        batch, steps = batch_steps
        rng = np.random.default_rng(0)
        X = rng.standard_normal((16, 10, 8))
        # Streams need the input scaled by channel (the default scales each series by
        # all its steps); commits before the option scaled by channel anyway.
        scaling = ({"input_scaling": "channel"} if "input_scaling" in
                   inspect.signature(LSTMClassifier.__init__).parameters else {})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.clf = LSTMClassifier(hidden_size=64, max_iter=1, random_state=0,
                                      **scaling).fit(X, np.arange(16) % 2)
        self.x = rng.standard_normal((batch, steps, 8))
        self.stream = self.clf.stream(batch_size=batch)
        self.stream.predict_proba(self.x)  # compile / load the kernels
        self.clf.predict_proba(self.x)

    def time_stream_predict_proba(self, batch_steps):
        self.stream.predict_proba(self.x)

    def time_predict_proba(self, batch_steps):
        self.clf.predict_proba(self.x)
