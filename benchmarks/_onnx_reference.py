"""An ONNX Runtime twin of a PyTorch-layout LSTM, for the side-by-side benchmarks.

The graph is built here from a ``state_dict`` (PyTorch's names and gate order), not with
numlstm's own exporter, so that the comparison does not depend on the code it could
check. It is the graph a deployed model usually has: one ONNX ``LSTM`` operator per
layer (both directions in one node), batch-first input transposed to ONNX's time-major
layout, and the directions' outputs concatenated between layers, as ``torch.onnx.export``
writes it.

``onnx`` and ``onnxruntime`` are optional (the ``bench`` extra); :func:`unavailable_reason`
says why a comparison is skipped.
"""

import numpy as np

#: ONNX orders the LSTM gates (input, output, forget, cell); PyTorch (input, forget, cell,
#: output). Row blocks of PyTorch's weights in ONNX's order:
_TORCH_TO_ONNX_GATES = (0, 3, 1, 2)
OPSET = 17


def unavailable_reason():
    """None when onnx and onnxruntime import, else a sentence saying what is missing."""
    missing = []
    for name in ("onnx", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        return (f"{' and '.join(missing)} not installed (pip install numlstm[bench]): "
                f"no ONNX Runtime column")
    return None


def _onnx_gates(weight, hidden_size):
    """Reorder the 4 row blocks of a PyTorch gate matrix or bias into ONNX's order."""
    blocks = weight.reshape(4, hidden_size, *weight.shape[1:])
    return blocks[list(_TORCH_TO_ONNX_GATES)].reshape(weight.shape)


def lstm_model(state_dict, input_size, hidden_size, num_layers=1, bidirectional=False):
    """An ``onnx.ModelProto`` computing ``torch.nn.LSTM(batch_first=True)``'s output.

    Input ``x`` of shape (batch, time, input_size), float32, both dimensions dynamic;
    output ``out`` of shape (batch, time, num_directions * hidden_size).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    directions = 2 if bidirectional else 1
    suffixes = ["", "_reverse"][:directions]
    nodes = [helper.make_node("Transpose", ["x"], ["x_tbi"], perm=[1, 0, 2])]
    initializers = []
    layer_input = "x_tbi"
    for k in range(num_layers):
        W, R, B = [], [], []
        for suffix in suffixes:
            W.append(_onnx_gates(state_dict[f"weight_ih_l{k}{suffix}"], hidden_size))
            R.append(_onnx_gates(state_dict[f"weight_hh_l{k}{suffix}"], hidden_size))
            B.append(np.concatenate([
                _onnx_gates(state_dict[f"bias_ih_l{k}{suffix}"], hidden_size),
                _onnx_gates(state_dict[f"bias_hh_l{k}{suffix}"], hidden_size)]))
        for name, value in ((f"W{k}", W), (f"R{k}", R), (f"B{k}", B)):
            initializers.append(numpy_helper.from_array(
                np.ascontiguousarray(np.stack(value), dtype=np.float32), name))
        nodes.append(helper.make_node(
            "LSTM", [layer_input, f"W{k}", f"R{k}", f"B{k}"], [f"y{k}"],
            hidden_size=hidden_size,
            direction="bidirectional" if bidirectional else "forward"))
        # Y is (time, directions, batch, hidden): to (time, batch, directions * hidden).
        nodes.append(helper.make_node("Transpose", [f"y{k}"], [f"y{k}_tbdh"],
                                      perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", [f"y{k}_tbdh", "tb_flat"], [f"h{k}"]))
        layer_input = f"h{k}"
    initializers.append(numpy_helper.from_array(np.array([0, 0, -1], dtype=np.int64),
                                                "tb_flat"))
    nodes.append(helper.make_node("Transpose", [layer_input], ["out"], perm=[1, 0, 2]))
    graph = helper.make_graph(
        nodes, "lstm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                       ["batch", "time", input_size])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT,
                                       ["batch", "time", directions * hidden_size])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    return model


def inference_session(model, n_threads):
    """An ONNX Runtime CPU session on ``n_threads`` intra-op threads that do not spin.

    ONNX Runtime's workers spin after each call by default; on a machine with as many
    threads as cores they would take a core from whatever is timed next.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = n_threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model.SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])
