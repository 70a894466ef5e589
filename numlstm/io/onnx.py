"""Export to ONNX, for deployment with ONNX Runtime or any other ONNX inference engine.

:func:`to_onnx` writes a standard ONNX graph built from the ONNX ``LSTM``, ``GRU`` and
``RNN`` operators (one node per layer, both directions in one node), so an inference
engine runs its own optimised recurrent kernels. What maps, and how:

* **Gate order and weight layout.** numlstm keeps PyTorch's layout (LSTM gates i, f, g, o;
  GRU r, z, n); ONNX orders them i, o, f, c and z, r, h. Weights are ``W`` (directions,
  gates * H, inputs), ``R`` (directions, gates * H, H) and ``B`` = ``[W_b, R_b]``.
* **GRU**: numlstm's candidate ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`` is ONNX's
  ``linear_before_reset=1``.
* **RNN**: ``nonlinearity`` becomes the operator's activation (``Tanh`` or ``Relu``).
* **Peepholes** map exactly to the LSTM's ``P`` input (ONNX order i, o, f).
* **Projections** (``proj_size > 0``) have no ONNX counterpart: refused.
* **Ragged batches**: an optional ``sequence_lens`` input (int32, one length per
  sequence) with the semantics of numlstm's ``lengths``: each sequence's final state is
  the one at its own last step, outputs are zero after it.
* **Estimators**: the input standardisation, every recurrent layer, the dense head, and
  the output (regressor: predictions in the target's units; classifier: class
  probabilities and labels).

Batch and time are dynamic dimensions. ONNX Runtime's recurrent kernels are float32, so
models are exported in float32 whatever their dtype (a float64 model's exported outputs
differ from its own by float32 rounding). The graph uses opset :data:`OPSET`.

The ``onnx`` package is an optional dependency (``pip install numlstm[onnx]``); it is
imported only when exporting.
"""

import numpy as np

__all__ = ["OPSET", "to_onnx"]

#: ONNX operator set of exported models (ONNX Runtime 1.14 or newer runs it).
OPSET = 17

#: Row blocks of numlstm's (PyTorch's) gate matrices in ONNX's order, per cell.
_GATE_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "rnn": (0,)}
_OPERATOR = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def _import_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("exporting to ONNX needs the onnx package: "
                          "pip install numlstm[onnx]") from exc
    return onnx


def _cell_of(layer):
    """``"lstm"``, ``"gru"`` or ``"rnn"``, refusing what ONNX cannot express exactly."""
    kernel_cell = layer._kernel_cell
    cell = "rnn" if kernel_cell.startswith("rnn") else kernel_cell
    if cell not in _OPERATOR:
        raise ValueError(f"cannot export a {type(layer).__name__} with cell {kernel_cell!r} "
                         f"to ONNX")
    if getattr(layer, "proj_size", 0):
        raise ValueError("an LSTM with proj_size > 0 cannot be exported to ONNX: the ONNX "
                         "LSTM operator has no projection of the hidden state")
    return cell


class _Graph:
    """Nodes and initializers of the graph being built, with unique names."""

    def __init__(self, onnx):
        self.helper = onnx.helper
        self.numpy_helper = onnx.numpy_helper
        self.nodes, self.initializers, self._count = [], [], 0

    def name(self, stem):
        self._count += 1
        return f"{stem}_{self._count}"

    def constant(self, value, stem, dtype=np.float32):
        name = self.name(stem)
        self.initializers.append(self.numpy_helper.from_array(
            np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def node(self, op, inputs, stem, n_outputs=1, outputs=None, **attributes):
        outputs = outputs or [self.name(stem) for _ in range(n_outputs)]
        self.nodes.append(self.helper.make_node(op, inputs, outputs, **attributes))
        return outputs[0] if len(outputs) == 1 else outputs


def _onnx_blocks(weight, cell, hidden_size):
    """Reorder the gate row blocks of a (gates * H, ...) array into ONNX's order."""
    order = _GATE_ORDER[cell]
    blocks = weight.reshape(len(order), hidden_size, *weight.shape[1:])
    return blocks[list(order)].reshape(weight.shape)


def _recurrent_layers(graph, layer, x_time_major, sequence_lens):
    """Nodes of every layer; returns the last layer's output (T, B, D*H) and the final
    states, each (L*D, B, H)."""
    cell = _cell_of(layer)
    state = layer.state_dict()
    H = layer.hidden_size
    suffixes = ("", "_reverse")[:layer.num_directions]
    inp = x_time_major
    finals = [[] for _ in range(layer.n_states)]
    attributes = {"hidden_size": H,
                  "direction": "bidirectional" if layer.bidirectional else "forward"}
    if cell == "gru":
        attributes["linear_before_reset"] = 1
    if cell == "rnn":
        activation = {"rnn_tanh": "Tanh", "rnn_relu": "Relu"}[layer._kernel_cell]
        attributes["activations"] = [activation] * layer.num_directions
    for k in range(layer.num_layers):
        W, R, B, P = [], [], [], []
        for suffix in suffixes:
            W.append(_onnx_blocks(state[f"weight_ih_l{k}{suffix}"], cell, H))
            R.append(_onnx_blocks(state[f"weight_hh_l{k}{suffix}"], cell, H))
            B.append(np.concatenate([_onnx_blocks(state[f"bias_ih_l{k}{suffix}"], cell, H),
                                     _onnx_blocks(state[f"bias_hh_l{k}{suffix}"], cell, H)]))
            if getattr(layer, "peephole", False):
                P.append(np.concatenate([state[f"weight_c{gate}_l{k}{suffix}"]
                                         for gate in "iof"]))
        inputs = [inp, graph.constant(np.stack(W), f"W{k}"),
                  graph.constant(np.stack(R), f"R{k}"), graph.constant(np.stack(B), f"B{k}"),
                  sequence_lens or ""]
        if P:
            inputs += ["", "", graph.constant(np.stack(P), f"P{k}")]  # no initial states
        n_outputs = 1 + layer.n_states  # Y, Y_h (, Y_c)
        outputs = graph.node(_OPERATOR[cell], inputs, f"{cell}{k}", n_outputs=n_outputs,
                             **attributes)
        y, states = outputs[0], outputs[1:]
        for collected, s in zip(finals, states):
            collected.append(s)
        # Y is (T, D, B, H): to (T, B, D*H), the next layer's input.
        y = graph.node("Transpose", [y], "y_tbdh", perm=[0, 2, 1, 3])
        inp = graph.node("Reshape", [y, graph.constant([0, 0, -1], "tb_flat", np.int64)],
                         f"h{k}")
    stacked = [graph.node("Concat", parts, "state", axis=0) if len(parts) > 1 else parts[0]
               for parts in finals]
    return inp, stacked


def _model(graph, inputs, outputs, doc):
    helper = graph.helper
    model = helper.make_model(
        helper.make_graph(graph.nodes, "numlstm", inputs, outputs, graph.initializers),
        opset_imports=[helper.make_opsetid("", OPSET)], producer_name="numlstm",
        doc_string=doc)
    _import_onnx().checker.check_model(model)
    return model


def _input_infos(helper, TensorProto, n_features, ragged):
    infos = [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                           ["batch", "time", n_features])]
    if ragged:
        infos.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32,
                                                   ["batch"]))
    return infos


def _layer_model(onnx, layer, ragged):
    from onnx import TensorProto

    graph = _Graph(onnx)
    x_tbi = graph.node("Transpose", ["x"], "x_tbi", perm=[1, 0, 2])
    out, finals = _recurrent_layers(graph, layer, x_tbi, "sequence_lens" if ragged else None)
    graph.node("Transpose", [out], "out", outputs=["out"], perm=[1, 0, 2])
    names = ["h_n", "c_n"][:layer.n_states]
    for name, state in zip(names, finals):
        graph.node("Identity", [state], name, outputs=[name])
    helper = graph.helper
    size = layer.num_directions * layer.hidden_size
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT,
                                             ["batch", "time", size])]
    outputs += [helper.make_tensor_value_info(
        name, TensorProto.FLOAT, [layer.num_layers * layer.num_directions, "batch",
                                  layer.hidden_size]) for name in names]
    return _model(graph, _input_infos(helper, TensorProto, layer.input_size, ragged),
                  outputs, f"numlstm {layer!r}")


def _padding_mask(graph, sequence_lens, like="x"):
    """(B, T, 1) float mask: 1 at each sequence's valid steps, 0 after them; ``T`` is
    axis 1 of the (B, T, ...) tensor ``like``."""
    shape = graph.node("Shape", [like], "x_shape")
    n_steps = graph.node("Gather", [shape, graph.constant(1, "one", np.int64)], "n_steps",
                         axis=0)
    steps = graph.node("Range", [graph.constant(0, "zero", np.int64), n_steps,
                                 graph.constant(1, "step", np.int64)], "steps")
    lens = graph.node("Cast", [sequence_lens], "lens", to=7)  # int64
    lens = graph.node("Unsqueeze", [lens, graph.constant([1], "axis1", np.int64)], "lens_b1")
    valid = graph.node("Less", [steps, lens], "valid")  # (B, T) by broadcasting
    valid = graph.node("Cast", [valid], "valid_f", to=1)  # float
    return graph.node("Unsqueeze", [valid, graph.constant([2], "axis2", np.int64)], "mask")


def _patches(graph, x, sequence_lens, patch, n_features):
    """The estimator's patches (:mod:`numlstm.estimators._patches`) of the standardised
    (B, T, C) input: zero at padded steps, the time axis filled up with zeros to a multiple
    of ``patch``, then (B, T / patch, patch * C); and the lengths in patches."""
    if sequence_lens is not None:
        x = graph.node("Mul", [x, _padding_mask(graph, sequence_lens)], "x_valid")
    size = graph.constant([patch], "patch", np.int64)
    n_steps = graph.node("Slice", [graph.node("Shape", [x], "x_shape_p"),
                                   graph.constant([1], "from", np.int64),
                                   graph.constant([2], "to", np.int64)], "n_steps_p")
    missing = graph.node("Mod", [graph.node("Sub", [size, graph.node(
        "Mod", [n_steps, size], "rest")], "short"), size], "missing")
    # Pad's pads: the begins (0, 0, 0), then the ends (0, missing, 0).
    pads = graph.node("Concat", [graph.constant([0, 0, 0, 0], "zeros", np.int64), missing,
                                 graph.constant([0], "zero", np.int64)], "pads", axis=0)
    x = graph.node("Pad", [x, pads], "x_filled")
    x = graph.node("Reshape", [x, graph.constant([0, -1, patch * n_features], "patched",
                                                 np.int64)], "x_patches")
    if sequence_lens is not None:
        lens = graph.node("Add", [sequence_lens, graph.constant([patch - 1], "round_up",
                                                                np.int32)], "lens_up")
        sequence_lens = graph.node("Div", [lens, graph.constant([patch], "patch_i32",
                                                                np.int32)], "lens_patches")
    return x, sequence_lens


def _series_scaling(graph, x, sequence_lens, estimator):
    """``input_scaling="series"`` (:mod:`numlstm.estimators._scaling`) of the raw (B, T, C)
    input: each series and channel scaled by its own mean and floored standard deviation
    over its valid steps; and those statistics, standardised as the estimator standardises
    them, as a (B, 1, 2 * C) tensor."""
    from ..estimators._scaling import SERIES_SCALE_FLOOR

    if sequence_lens is None:
        mean = graph.node("ReduceMean", [x], "series_mean", axes=[1], keepdims=1)
        centred = graph.node("Sub", [x, mean], "series_centred")
        var = graph.node("ReduceMean", [graph.node("Mul", [centred, centred], "squares")],
                         "series_var", axes=[1], keepdims=1)
    else:
        # Only ReduceSum takes its axes as an input (ReduceMean, above, as an attribute):
        # created here, as ONNX Runtime warns of (and drops) an initializer no node reads.
        time_axis = graph.constant([1], "time_axis_s", np.int64)
        mask = _padding_mask(graph, sequence_lens)  # (B, T, 1), 1.0 at valid steps
        count = graph.node("Cast", [sequence_lens], "series_count", to=1)  # float
        count = graph.node("Reshape", [count, graph.constant([-1, 1, 1], "b11", np.int64)],
                           "series_count_b11")
        total = graph.node("ReduceSum", [graph.node("Mul", [x, mask], "x_masked"),
                                         time_axis], "series_total", keepdims=1)
        mean = graph.node("Div", [total, count], "series_mean")
        centred = graph.node("Sub", [x, mean], "series_centred")
        squares = graph.node("Mul", [graph.node("Mul", [centred, centred], "squares"),
                                     mask], "squares_masked")
        var = graph.node("Div", [graph.node("ReduceSum", [squares, time_axis], "sum_squares",
                                            keepdims=1), count], "series_var")
    floor = graph.constant(SERIES_SCALE_FLOOR * np.asarray(estimator._x_scale), "scale_floor")
    scale = graph.node("Max", [graph.node("Sqrt", [var], "series_sd"), floor], "series_scale")
    scaled = graph.node("Div", [centred, scale], "series_scaled")
    channel_scale = graph.constant(estimator._x_scale, "channel_scale")
    level = graph.node("Div", [graph.node("Sub", [mean, graph.constant(
        estimator._x_mean, "channel_mean")], "level_centred"), channel_scale], "level")
    amplitude = graph.node("Log", [graph.node("Div", [scale, channel_scale],
                                              "relative_scale")], "log_amplitude")
    statistics = graph.node("Concat", [level, amplitude], "statistics", axis=2)
    statistics = graph.node("Sub", [statistics, graph.constant(estimator._stat_mean,
                                                               "stat_mean")], "stat_centred")
    statistics = graph.node("Div", [statistics, graph.constant(estimator._stat_scale,
                                                               "stat_scale")], "stat_scaled")
    return scaled, statistics


def _append_statistics(graph, x, statistics):
    """The (B, T', F) network input ``x`` with the (B, 1, S) ``statistics`` repeated at
    every step after its own features."""
    batch_steps = graph.node("Slice", [graph.node("Shape", [x], "x_shape_s"),
                                       graph.constant([0], "from_s", np.int64),
                                       graph.constant([2], "to_s", np.int64)], "batch_steps")
    width = graph.node("Slice", [graph.node("Shape", [statistics], "stat_shape"),
                                 graph.constant([2], "from_w", np.int64),
                                 graph.constant([3], "to_w", np.int64)], "stat_width")
    shape = graph.node("Concat", [batch_steps, width], "stat_target", axis=0)
    repeated = graph.node("Expand", [statistics, shape], "stat_repeated")
    return graph.node("Concat", [x, repeated], "x_with_statistics", axis=2)


def _pooled_features(graph, out, readout, sequence_lens):
    """(B, features) of a pooled readout (:mod:`numlstm.nn.readout`) of the (T, B, F)
    output ``out``, over each sequence's valid steps when ``sequence_lens`` is given."""
    out = graph.node("Transpose", [out], "out_btf", perm=[1, 0, 2])
    parts = []
    if sequence_lens is None:
        if readout != "max":
            parts.append(graph.node("ReduceMean", [out], "mean", axes=[1], keepdims=0))
        if readout != "mean":
            parts.append(graph.node("ReduceMax", [out], "max", axes=[1], keepdims=0))
    else:
        mask = _padding_mask(graph, sequence_lens, out)  # (B, T, 1), 1.0 at valid steps
        if readout != "max":
            total = graph.node("ReduceSum", [graph.node("Mul", [out, mask], "masked"),
                                             graph.constant([1], "time_axis", np.int64)],
                               "total", keepdims=0)
            count = graph.node("Cast", [sequence_lens], "count", to=1)  # float
            count = graph.node("Unsqueeze", [count, graph.constant([1], "axis1", np.int64)],
                               "count_b1")
            parts.append(graph.node("Div", [total, count], "mean"))
        if readout != "mean":
            valid = graph.node("Cast", [mask], "valid_bool", to=9)  # bool
            lowest = graph.constant(-np.inf, "minus_infinity")
            masked = graph.node("Where", [valid, out, lowest], "masked_for_max")
            parts.append(graph.node("ReduceMax", [masked], "max", axes=[1], keepdims=0))
    if len(parts) == 1:
        return parts[0]
    return graph.node("Concat", parts, "features", axis=1)


def _member_output(graph, network, x, lens, classifier):
    """One network's output on the standardised time-major input ``x``: probabilities
    for a classifier, raw outputs for a regressor."""
    layer = network.lstm
    out, (h_n, *_) = _recurrent_layers(graph, layer, x, lens)
    coef = graph.constant(network.coef_, "coef")
    intercept = graph.constant(network.intercept_, "intercept")
    if network.sequence_output:
        features = graph.node("Transpose", [out], "out_btf", perm=[1, 0, 2])
    elif network.readout != "last":
        features = _pooled_features(graph, out, network.readout, lens)
    else:
        D = layer.num_directions
        last = graph.node("Slice", [h_n, graph.constant([-D], "start", np.int64),
                                    graph.constant([layer.num_layers * D], "end", np.int64),
                                    graph.constant([0], "axis0", np.int64)], "h_last")
        last = graph.node("Transpose", [last], "h_last_bdh", perm=[1, 0, 2])
        features = graph.node("Reshape", [last, graph.constant([0, -1], "b_flat", np.int64)],
                              "features")
    raw = graph.node("Add", [graph.node("MatMul", [features, coef], "dense"), intercept],
                     "raw")
    if not classifier:
        return raw
    if network.out_activation == "logistic":
        p = graph.node("Sigmoid", [raw], "p1")
        return graph.node("Concat", [graph.node("Sub", [graph.constant([1.0], "unit"), p],
                                                "p0"), p], "proba2", axis=1)
    return graph.node("Softmax", [raw], "proba", axis=-1)


def _estimator_model(onnx, estimator, ragged):
    from onnx import TensorProto
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator, "network_")
    network = estimator.network_
    helper = onnx.helper
    graph = _Graph(onnx)
    lens = "sequence_lens" if ragged else None
    statistics = None
    if getattr(estimator, "input_scaling_", "channel") == "series":
        x, statistics = _series_scaling(graph, "x", lens, estimator)
    else:
        # Standardise the input as the estimator does (its mean and scale are float64).
        x = graph.node("Sub", ["x", graph.constant(estimator._x_mean, "x_mean")],
                       "x_centred")
        x = graph.node("Div", [x, graph.constant(estimator._x_scale, "x_scale")], "x_scaled")
    patch = getattr(estimator, "patch_length_", 1)
    if patch > 1:
        x, lens = _patches(graph, x, lens, patch, estimator.n_features_in_)
    if statistics is not None:
        x = _append_statistics(graph, x, statistics)
    x = graph.node("Transpose", [x], "x_tbi", perm=[1, 0, 2])
    classifier = hasattr(estimator, "classes_")
    if classifier and network.sequence_output:
        raise ValueError("cannot export a sequence-output classifier to ONNX")
    # An ensemble's output is the mean of its members' probabilities (classifier) or raw
    # outputs (regressor: its predictions are an affine function of them), as predict's.
    members = [_member_output(graph, member, x, lens, classifier)
               for member in estimator.networks_]
    raw = members[0] if len(members) == 1 else graph.node("Mean", members, "ensemble")
    seq = ["batch", "time"] if network.sequence_output else ["batch"]
    outputs = []
    if classifier:
        proba = raw
        graph.node("Identity", [proba], "probabilities", outputs=["probabilities"])
        index = graph.node("ArgMax", [proba], "index", axis=1, keepdims=0)
        classes = np.asarray(estimator.classes_)
        outputs.append(helper.make_tensor_value_info(
            "probabilities", TensorProto.FLOAT, ["batch", len(classes)]))
        label_type = _label_type(classes)
        if label_type is not None:
            tensor = helper.make_tensor("classes", label_type[0], [len(classes)],
                                        label_type[1](classes))
            table = graph.node("Constant", [], "classes", value=tensor)
            graph.node("Gather", [table, index], "label", outputs=["label"], axis=0)
            outputs.append(helper.make_tensor_value_info("label", label_type[0], ["batch"]))
        else:
            graph.node("Identity", [index], "label", outputs=["label"])
            outputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]))
    else:
        # Back to the target's units, as predict does.
        y_scale = graph.constant(estimator._y_scale, "y_scale")
        y = graph.node("Mul", [raw, y_scale], "y_scaled")
        y = graph.node("Add", [y, graph.constant(estimator._y_mean, "y_mean")], "y")
        if network.sequence_output and ragged:
            y = graph.node("Mul", [y, _padding_mask(graph, lens)], "y_masked")
        if estimator._y_ndim == 1:  # predict returns (n_samples,)
            y = graph.node("Squeeze", [y, graph.constant([-1], "last_axis", np.int64)], "y1")
            shape = ["batch"]
        else:
            shape = seq + [network.n_outputs]
        graph.node("Identity", [y], "prediction", outputs=["prediction"])
        outputs.append(helper.make_tensor_value_info("prediction", TensorProto.FLOAT, shape))
    return _model(graph, _input_infos(helper, TensorProto, estimator.n_features_in_, ragged),
                  outputs, f"numlstm {type(estimator).__name__}")


def _label_type(classes):
    """(ONNX element type, converter) of the labels, or None when ONNX has no such type."""
    from onnx import TensorProto

    if classes.dtype.kind == "u":
        # Unsigned labels keep their own type: in int64, those >= 2**63 would wrap negative.
        unsigned = {1: TensorProto.UINT8, 2: TensorProto.UINT16, 4: TensorProto.UINT32,
                    8: TensorProto.UINT64}[classes.dtype.itemsize]
        return unsigned, lambda c: c.tolist()
    if classes.dtype.kind == "i":
        return TensorProto.INT64, lambda c: c.astype(np.int64).tolist()
    if classes.dtype.kind == "b":
        return TensorProto.BOOL, lambda c: c.astype(bool).tolist()
    if classes.dtype.kind == "f":
        return TensorProto.DOUBLE, lambda c: c.astype(np.float64).tolist()
    if classes.dtype.kind == "U" or (classes.dtype.kind == "O"
                                     and all(isinstance(c, str) for c in classes)):
        return TensorProto.STRING, lambda c: [str(v).encode() for v in c]
    return None


def _not_exportable(model):
    """Why ``to_onnx`` refuses ``model``, with what to pass instead where we can tell."""
    from sklearn.pipeline import Pipeline

    message = f"to_onnx takes a numlstm estimator or layer, got {type(model).__name__}"
    if isinstance(model, Pipeline) and model.steps:
        from ..estimators._base import BaseLSTM

        name, last = model.steps[-1]
        if isinstance(last, BaseLSTM):
            return (f"{message}: export its last step instead, to_onnx(pipeline[-1]) (the "
                    f"{type(last).__name__} {name!r}). Its preprocessing steps are not "
                    "exported: apply them to the input before running the ONNX model")
    return message


def to_onnx(model, path=None, *, ragged=False):
    """Export a fitted estimator or a recurrent layer to an ONNX model.

    Parameters
    ----------
    model : LSTMRegressor, LSTMClassifier, LSTM, GRU or RNN
        A fitted estimator, or a layer of the research API.
    path : str or path-like, optional
        Where to write the model (``.onnx``); it is also returned.
    ragged : bool, default=False
        Add an input ``sequence_lens`` (int32, shape (batch,)) giving each sequence's
        number of valid steps, for zero-padded batches of unequal lengths.

    Returns
    -------
    onnx.ModelProto
        The model. Inputs: ``x`` (float32, (batch, time, features)) and, with
        ``ragged``, ``sequence_lens``. Outputs: for a regressor ``prediction`` (the
        shape of ``predict``'s result); for a classifier ``probabilities`` (batch,
        n_classes) and ``label`` (from ``classes_``: int64 for signed integer labels,
        the unsigned type of their width for unsigned ones, double, bool or string; the
        class index when ONNX has no tensor type for the labels); for a layer ``out``
        (batch, time, num_directions * hidden_size), ``h_n`` (and the LSTM's ``c_n``).

    Raises
    ------
    TypeError
        If ``model`` is neither a numlstm estimator nor a layer: a scikit-learn
        ``Pipeline`` is refused (export its numlstm last step instead; its preprocessing
        steps are not exported).
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    ValueError
        For what ONNX cannot express exactly: an LSTM projection (``proj_size``), a
        sequence-output classifier.
    ImportError
        When the ``onnx`` package is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime
    >>> from numlstm import LSTMRegressor, to_onnx
    >>> X = np.random.default_rng(0).normal(size=(64, 12, 2))
    >>> model = LSTMRegressor(hidden_size=8, max_iter=3, random_state=0)
    >>> model = model.fit(X, X[:, :, 0].sum(axis=1))
    >>> session = onnxruntime.InferenceSession(to_onnx(model).SerializeToString())
    >>> prediction, = session.run(None, {"x": X.astype(np.float32)})
    >>> bool(np.allclose(prediction, model.predict(X), rtol=1e-4, atol=1e-4))
    True
    """
    onnx = _import_onnx()
    from ..estimators._base import BaseLSTM
    from ..nn.recurrent import RecurrentLayer

    if isinstance(model, RecurrentLayer):
        proto = _layer_model(onnx, model, ragged)
    elif isinstance(model, BaseLSTM):
        proto = _estimator_model(onnx, model, ragged)
    else:
        raise TypeError(_not_exportable(model))
    if path is not None:
        onnx.save(proto, str(path))
    return proto
