"""Export to ONNX (numlstm.to_onnx): the exported graphs, run in ONNX Runtime, give what
numlstm gives, for every cell, layer count, direction, ragged batches and both estimators."""

import sys
import warnings

import numpy as np
import pytest

from numlstm import GRU, LSTM, RNN, LSTMClassifier, LSTMRegressor, to_onnx

onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx (pip install numlstm[onnx])")
onnxruntime = pytest.importorskip("onnxruntime",
                                  reason="running exported models needs onnxruntime")

#: Exported models are float32: agreement to float32 rounding of a short recurrence.
TOL = 1e-5


def _session(model, ragged=False, tmp_path=None):
    proto = to_onnx(model, ragged=ragged)
    onnx.checker.check_model(proto)
    return onnxruntime.InferenceSession(proto.SerializeToString(),
                                        providers=["CPUExecutionProvider"])


LAYERS = {
    "lstm": lambda dt: LSTM(3, 5, dtype=dt, random_state=0),
    "lstm-2-layers-bi": lambda dt: LSTM(3, 5, num_layers=2, bidirectional=True, dtype=dt,
                                        random_state=1),
    "lstm-peephole-bi": lambda dt: LSTM(3, 4, peephole=True, bidirectional=True, dtype=dt,
                                        random_state=2),
    "gru-2-layers-bi": lambda dt: GRU(3, 5, num_layers=2, bidirectional=True, dtype=dt,
                                      random_state=3),
    "rnn-tanh-2-layers": lambda dt: RNN(3, 5, num_layers=2, dtype=dt, random_state=4),
    "rnn-relu-bi": lambda dt: RNN(3, 5, nonlinearity="relu", bidirectional=True, dtype=dt,
                                  random_state=5),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ragged", [False, True])
def test_layer_outputs_and_states_match(name, dtype, ragged):
    layer = LAYERS[name](dtype)
    session = _session(layer, ragged)
    rng = np.random.default_rng(0)
    for batch, steps in ((1, 1), (4, 9), (7, 3)):  # dynamic batch and time
        x = rng.normal(size=(batch, steps, 3)).astype(np.float32)
        lengths = rng.integers(1, steps + 1, size=batch).astype(np.int32)
        feeds = {"x": x}
        if ragged:
            feeds["sequence_lens"] = lengths
        got = session.run(None, feeds)
        out, states = layer.forward_states(x.astype(dtype), lengths=lengths if ragged else None,
                                           requires_grad=False)
        assert len(got) == 1 + len(states)
        np.testing.assert_allclose(got[0], out, rtol=TOL, atol=TOL)
        for g, s in zip(got[1:], states):
            np.testing.assert_allclose(g, s, rtol=TOL, atol=TOL)


def test_projection_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="proj_size.*no projection"):
        to_onnx(LSTM(3, 6, proj_size=2))


def _quiet_fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y)


def _ragged(rng, n, n_features, longest):
    lengths = rng.integers(2, longest + 1, size=n)
    return [rng.normal(size=(t, n_features)) for t in lengths], lengths


def _padded(sequences, longest):
    x = np.zeros((len(sequences), longest, sequences[0].shape[1]), dtype=np.float32)
    for i, s in enumerate(sequences):
        x[i, :len(s)] = s
    return x


ESTIMATOR_OPTIONS = [
    dict(),
    dict(num_layers=2, bidirectional=True),
    dict(cell="gru", bidirectional=True),
    dict(cell="rnn"),
    dict(dtype="float64"),
    dict(readout="mean"),
    dict(readout="max", bidirectional=True),
    dict(readout="mean_max", cell="gru"),
    dict(patch_length=3),
    dict(n_ensemble=3),
    dict(input_scaling="series"),
    dict(input_scaling="series", patch_length=3, bidirectional=True),
]


@pytest.mark.parametrize("options", ESTIMATOR_OPTIONS, ids=str)
def test_regressor_predictions_match(options):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 8, 2)) * 3 + 1  # standardisation matters
    y = 10 * X[:, :, 0].mean(axis=1) + 5
    model = _quiet_fit(LSTMRegressor(hidden_size=6, max_iter=3, random_state=0, **options),
                       X, y)
    got, = _session(model).run(None, {"x": X.astype(np.float32)})
    assert got.shape == (48,)
    np.testing.assert_allclose(got, model.predict(X), rtol=TOL, atol=TOL * np.abs(y).max())


def test_regressor_multi_output_and_sequence_targets_ragged():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 6, 2))
    model = _quiet_fit(LSTMRegressor(hidden_size=5, max_iter=2, random_state=0), X,
                       np.stack([X[:, :, 0].sum(1), X[:, :, 1].max(1)], axis=1))
    got, = _session(model).run(None, {"x": X.astype(np.float32)})
    np.testing.assert_allclose(got, model.predict(X), rtol=TOL, atol=TOL)

    sequences, lengths = _ragged(rng, 30, 2, 7)
    targets = [np.cumsum(s, axis=0) for s in sequences]
    seq_model = _quiet_fit(LSTMRegressor(hidden_size=5, max_iter=2, random_state=0),
                           sequences, targets)
    got, = _session(seq_model, ragged=True).run(
        None, {"x": _padded(sequences, 7), "sequence_lens": lengths.astype(np.int32)})
    expected = seq_model.predict(sequences)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("options", ESTIMATOR_OPTIONS, ids=str)
@pytest.mark.parametrize("labels", ["binary-strings", "three-ints"])
def test_classifier_probabilities_and_labels_match(options, labels):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 7, 3))
    score = X[:, :, 0].sum(axis=1)
    y = (np.where(score > 0, "up", "down") if labels == "binary-strings"
         else np.digitize(score, [-1.0, 1.0]) * 10)
    model = _quiet_fit(LSTMClassifier(hidden_size=6, max_iter=3, random_state=0, **options),
                       X, y)
    proba, label = _session(model).run(None, {"x": X.astype(np.float32)})
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=TOL, atol=TOL)
    np.testing.assert_array_equal(label, model.predict(X))


@pytest.mark.parametrize("readout, patch_length, scaling", [
    ("last", 1, "channel"), ("mean", 1, "channel"), ("max", 1, "channel"),
    ("mean_max", 1, "channel"), ("last", 4, "channel"), ("mean_max", 2, "channel"),
    ("last", 1, "series"), ("mean", 3, "series")])
def test_classifier_on_ragged_batches(readout, patch_length, scaling):
    rng = np.random.default_rng(3)
    sequences, lengths = _ragged(rng, 50, 2, 9)
    if scaling == "series":  # levels and amplitudes that differ by orders of magnitude
        sequences = [s * 10.0 ** rng.integers(-2, 3) + rng.normal() for s in sequences]
    y = np.array([int(s[:, 0].sum() > 0) for s in sequences])
    model = _quiet_fit(LSTMClassifier(hidden_size=5, max_iter=3, bidirectional=True,
                                      readout=readout, patch_length=patch_length,
                                      input_scaling=scaling, random_state=0), sequences, y)
    proba, label = _session(model, ragged=True).run(
        None, {"x": _padded(sequences, 9), "sequence_lens": lengths.astype(np.int32)})
    np.testing.assert_allclose(proba, model.predict_proba(sequences), rtol=TOL, atol=TOL)
    np.testing.assert_array_equal(label, model.predict(sequences))


def test_written_file_loads_and_declares_dynamic_dimensions(tmp_path):
    path = tmp_path / "layer.onnx"
    to_onnx(LSTM(2, 3, random_state=0), path)
    model = onnx.load(str(path))
    assert model.opset_import[0].version == numlstm_opset()
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", "time", 2]


def numlstm_opset():
    from numlstm.io.onnx import OPSET

    return OPSET


def test_unfitted_estimator_and_other_objects_are_refused():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        to_onnx(LSTMRegressor())
    with pytest.raises(TypeError, match="numlstm estimator or layer"):
        to_onnx(object())


def test_scikit_learn_estimators_and_pipelines_are_refused_clearly():
    """Not a NotFittedError about a fitted model: a TypeError saying what to pass."""
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 4, 1))
    y = X.sum(axis=(1, 2))
    with pytest.raises(TypeError, match="numlstm estimator or layer, got LinearRegression$"):
        to_onnx(LinearRegression().fit(X[:, :, 0], y))
    pipeline = _quiet_fit(make_pipeline(FunctionTransformer(), LSTMRegressor(
        hidden_size=3, max_iter=2, random_state=0)), X, y)
    with pytest.raises(TypeError, match=r"got Pipeline: export its last step instead, "
                                        r"to_onnx\(pipeline\[-1\]\).*'lstmregressor'.*"
                                        r"preprocessing steps are not exported"):
        to_onnx(pipeline)
    to_onnx(pipeline[-1])  # as suggested
    other = make_pipeline(StandardScaler(), LinearRegression()).fit(X[:, :, 0], y)
    with pytest.raises(TypeError, match="numlstm estimator or layer, got Pipeline$"):
        to_onnx(other)


@pytest.mark.parametrize("labels", [
    np.array([2**63 - 1, 2**63, 2**64 - 1], dtype=np.uint64),  # int64 would wrap these
    np.array([0, 7, 255], dtype=np.uint8),
], ids=["uint64-near-2**63", "uint8"])
def test_unsigned_labels_match_predict(labels):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(45, 5, 2))
    y = labels[np.digitize(X[:, :, 0].sum(axis=1), [-1.0, 1.0])]
    model = _quiet_fit(LSTMClassifier(hidden_size=4, max_iter=3, random_state=0), X, y)
    _, label = _session(model).run(None, {"x": X.astype(np.float32)})
    expected = model.predict(X)
    assert label.dtype == expected.dtype == labels.dtype
    np.testing.assert_array_equal(label, expected)


@pytest.mark.parametrize("ragged", [False, True])
@pytest.mark.parametrize("options", ESTIMATOR_OPTIONS, ids=str)
def test_every_initializer_is_used(options, ragged):
    """ONNX Runtime warns about (and drops) initializers no node reads."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(20, 6, 2))
    model = _quiet_fit(LSTMRegressor(hidden_size=3, max_iter=1, random_state=0, **options),
                       X, X[:, :, 0].sum(axis=1))
    graph = to_onnx(model, ragged=ragged).graph
    used = {name for node in graph.node for name in node.input}
    assert [t.name for t in graph.initializer if t.name not in used] == []


def test_importing_numlstm_does_not_import_onnx():
    import subprocess

    code = "import sys, numlstm; print('onnx' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
