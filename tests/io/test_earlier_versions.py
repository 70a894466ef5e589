"""Models saved by an earlier numlstm (before the package took its layered layout) still
load and predict the same.

The files in ``tests/data`` were written by numlstm 0.1.0.dev0 as it was before the move:
a fitted bidirectional ``LSTMClassifier`` as a model file and as a plain pickle, and a
two-layer ``GRU`` as a pickle, with their outputs on fixed inputs. The layers' outputs
match bit for bit; the classifier's probabilities to float32 rounding, since its output
layer now computes in float64 (so that a sample's prediction does not depend on its batch).
"""

import pickle
from pathlib import Path

import numpy as np

import numlstm

DATA = Path(__file__).resolve().parents[1] / "data"
EXPECTED = np.load(DATA / "expected_0.1.0.dev0.npz")


def test_model_file_of_an_earlier_version_loads():
    clf = numlstm.load(DATA / "classifier_0.1.0.dev0.npz")
    np.testing.assert_allclose(clf.predict_proba(EXPECTED["X_new"]), EXPECTED["proba"],
                               rtol=1e-6, atol=1e-7)
    # Written before input dropout existed: it was trained without, and goes on so.
    assert clf.input_dropout == 0.0 and clf.network_.lstm.input_dropout == 0.0
    assert clf.output_dropout == 0.0 and clf.network_.output_dropout == 0.0
    # Every parameter added since takes the value the model was trained with (the file
    # names none of them; patch_length, say, defaults to "auto" now), so a clone refits
    # the same architecture.
    params = clf.get_params()
    assert (params["input_dropout"], params["n_ensemble"], params["patch_length"],
            params["readout"], params["input_scaling"], params["output_dropout"]) == (
        0.0, 1, 1, "last", "channel", 0.0)
    with open(DATA / "classifier_0.1.0.dev0.pkl", "rb") as f:
        assert params == pickle.load(f).get_params()


def test_pickles_of_an_earlier_version_load():
    # They name the classes by their old modules (numlstm.layers, numlstm.network,
    # numlstm.optimizers): the old names still resolve.
    with open(DATA / "classifier_0.1.0.dev0.pkl", "rb") as f:
        clf = pickle.load(f)
    np.testing.assert_allclose(clf.predict_proba(EXPECTED["X_new"]), EXPECTED["proba"],
                               rtol=1e-6, atol=1e-7)
    # The parameters added since take the values the model was trained with.
    params = clf.get_params()
    assert (params["input_dropout"], params["n_ensemble"], params["patch_length"],
            params["readout"], params["input_scaling"], params["output_dropout"]) == (
        0.0, 1, 1, "last", "channel", 0.0)
    assert type(clf.network_) is numlstm.nn.LSTMNetwork
    assert clf.network_.output_dropout == 0.0
    with open(DATA / "gru_0.1.0.dev0.pkl", "rb") as f:
        layer = pickle.load(f)
    assert type(layer) is numlstm.GRU
    out, _ = layer.forward(EXPECTED["X_new"], requires_grad=False)
    # float64, to its last bits: the cells' rounding has changed since (they no longer
    # fuse a product and a sum), the model has not.
    np.testing.assert_allclose(out, EXPECTED["gru_out"], rtol=1e-13, atol=1e-15)


def test_old_module_names_are_the_new_modules_contents():
    import numlstm.interop
    import numlstm.layers
    import numlstm.network
    import numlstm.optimizers

    assert numlstm.layers.LSTM is numlstm.LSTM
    assert numlstm.network.LSTMNetwork is numlstm.nn.network.LSTMNetwork
    assert numlstm.optimizers.AdamOptimizer is numlstm.training.optimizers.AdamOptimizer
    assert numlstm.interop.lstm_from_torch is numlstm.io.pytorch.lstm_from_torch
    # The new modules keep their own names (pickles of new objects name them).
    assert numlstm.LSTM.__module__ == "numlstm.nn.lstm"
