"""ONNX Runtime sessions for the side-by-side benchmarks.

The model is numlstm's own export (:func:`numlstm.to_onnx`): one ONNX ``LSTM`` operator per
layer, as a deployed model has it. The benchmarks check its outputs against numlstm's
before timing, so a wrong export stops them rather than skewing a ratio.

``onnx`` and ``onnxruntime`` are optional (the ``bench`` extra); :func:`unavailable_reason`
says why a comparison is skipped.
"""


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


def opset():
    from numlstm.io.onnx import OPSET

    return OPSET


def inference_session(layer, n_threads):
    """An ONNX Runtime CPU session of ``layer`` on ``n_threads`` intra-op threads that do
    not spin.

    ONNX Runtime's workers spin after each call by default; on a machine with as many
    threads as cores they would take a core from whatever is timed next.
    """
    import onnxruntime

    from numlstm import to_onnx

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = n_threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(to_onnx(layer).SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])
