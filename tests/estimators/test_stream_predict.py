"""``est.stream()``: online predictions equal ``predict`` on the prefix fed so far."""

from functools import partial

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from numlstm import LSTMClassifier, LSTMRegressor
from numlstm.estimators import PredictionStream
from numlstm.nn.readout import RunningPool, pool

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Streams need each channel scaled by training-set statistics: "auto" scales each series
# by statistics of all its steps, which a stream has not seen yet.
ChannelClassifier = partial(LSTMClassifier, input_scaling="channel")
ChannelRegressor = partial(LSTMRegressor, input_scaling="channel")

RNG = np.random.default_rng(3)
X = RNG.normal(size=(24, 13, 2))
Y_CLASS = np.digitize(X[:, :, 0].sum(axis=1), [-1.5, 1.5])
Y_REG = X[:, :, 1].mean(axis=1)
#: Chunk lengths that together cover the 13 steps, crossing patch boundaries unevenly.
CHUNKS = [1, 2, 1, 4, 3, 2]


def _chunked(X, sizes=CHUNKS):
    start = 0
    for size in sizes:
        yield start + size, X[:, start:start + size]
        start += size
    assert start == X.shape[1]


@pytest.mark.parametrize("readout", ["last", "mean", "max", "mean_max"])
@pytest.mark.parametrize("patch_length", [1, 3])
def test_classifier_stream_equals_predict_on_every_prefix(readout, patch_length):
    clf = ChannelClassifier(hidden_size=5, max_iter=4, readout=readout,
                            patch_length=patch_length, dtype="float64",
                            random_state=0).fit(X, Y_CLASS)
    batch = X[:3]
    stream = clf.stream(batch_size=3)
    for seen, chunk in _chunked(batch):
        proba = stream.predict_proba(chunk)
        np.testing.assert_allclose(proba, clf.predict_proba(batch[:, :seen]), rtol=1e-10,
                                   atol=1e-12)
        assert stream.n_steps_seen == seen
    # labels, after a reset: the stream starts new sequences
    stream.reset()
    for seen, chunk in _chunked(batch, [5, 8]):
        np.testing.assert_array_equal(stream.predict(chunk), clf.predict(batch[:, :seen]))


def test_ensemble_stream_averages_its_members():
    reg = ChannelRegressor(hidden_size=4, max_iter=3, n_ensemble=2, patch_length=2,
                           readout="mean", dtype="float64", random_state=1).fit(X, Y_REG)
    stream = reg.stream(batch_size=2)
    for seen, chunk in _chunked(X[:2]):
        np.testing.assert_allclose(stream.predict(chunk), reg.predict(X[:2, :seen]),
                                   rtol=1e-10, atol=1e-12)


def test_float32_stream_matches_predict_to_float32_rounding():
    clf = ChannelClassifier(hidden_size=6, max_iter=3, random_state=2).fit(X, Y_CLASS)
    stream = clf.stream()
    for seen, chunk in _chunked(X[:1]):
        np.testing.assert_allclose(stream.predict_proba(chunk),
                                   clf.predict_proba(X[:1, :seen]), rtol=1e-5, atol=1e-6)


def test_sequence_targets_give_the_chunks_steps():
    Y_seq = np.cumsum(X, axis=1)[:, :, :1]
    reg = LSTMRegressor(hidden_size=4, max_iter=3, dtype="float64",
                        random_state=0).fit(X, Y_seq)
    assert reg.input_scaling_ == "channel"  # what "auto" gives for sequence targets
    whole = reg.predict(X[:2])
    stream = reg.stream(batch_size=2)
    parts = [stream.predict(chunk) for _, chunk in _chunked(X[:2])]
    assert all(p.ndim == 3 for p in parts)
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=1e-10,
                               atol=1e-12)


def test_float32_and_integer_chunks_are_read_like_predict_reads_them():
    reg = ChannelRegressor(hidden_size=3, max_iter=2, dtype="float64",
                           random_state=0).fit(np.round(X * 3), Y_REG)
    Xi = np.round(X[:2] * 3).astype(np.int64)
    stream = reg.stream(batch_size=2)
    stream.predict(Xi[:, :5])
    np.testing.assert_allclose(stream.predict(Xi[:, 5:].astype(np.float32)),
                               reg.predict(Xi), rtol=1e-10)


def test_univariate_2d_chunks_and_further_training_are_seen():
    Xu = X[:, :, 0]
    reg = ChannelRegressor(hidden_size=3, max_iter=2, dtype="float64", random_state=0,
                           warm_start=True).fit(Xu, Y_REG)
    stream = reg.stream()
    stream.predict(Xu[:1, :6])
    before = stream.predict(Xu[:1, 6:])
    np.testing.assert_allclose(before, reg.predict(Xu[:1]), rtol=1e-10)
    reg.fit(Xu, Y_REG)  # the stream reads the networks' current weights
    stream.reset()
    stream.predict(Xu[:1, :6])
    after = stream.predict(Xu[:1, 6:])
    np.testing.assert_allclose(after, reg.predict(Xu[:1]), rtol=1e-10)
    assert not np.allclose(after, before, rtol=1e-6)


def test_stream_refuses_what_it_cannot_do():
    with pytest.raises(NotFittedError):
        ChannelClassifier().stream()
    clf = ChannelClassifier(hidden_size=3, max_iter=1, random_state=0).fit(X, Y_CLASS)
    stream = clf.stream(batch_size=2)
    assert isinstance(stream, PredictionStream) and "batch_size=2" in repr(stream)
    with pytest.raises(ValueError, match="carries 2 sequence"):
        stream.predict(X[:3, :2])
    with pytest.raises(ValueError, match="features"):
        stream.predict(X[:2, :2, :1])
    with pytest.raises(ValueError, match="NaN"):
        stream.predict(np.full((2, 1, 2), np.nan))
    with pytest.raises(ValueError, match="same number of steps"):
        stream.predict([X[0, :2], X[1, :3]])
    assert stream.n_steps_seen == 0  # nothing was fed by the refused chunks
    with pytest.raises(ValueError, match="positive int"):
        clf.stream(batch_size=0)
    reg = ChannelRegressor(hidden_size=3, max_iter=1, bidirectional=True,
                           random_state=0).fit(X, Y_REG)
    with pytest.raises(ValueError, match="bidirectional"):
        reg.stream()
    plain = ChannelRegressor(hidden_size=3, max_iter=1, random_state=0).fit(X, Y_REG)
    assert not hasattr(plain.stream(), "predict_proba")
    with pytest.raises(ValueError, match="no steps have been fed"):
        plain.network_.stream().predict()


def test_a_new_fit_ends_the_stream_and_a_failed_feed_counts_no_steps():
    """A fit that is not a warm start replaces the networks: a stream made before it
    says so instead of mixing the old networks with the new classes and scaling (it gave
    two-class probabilities for a three-class refit). Steps count only once fed."""
    clf = ChannelClassifier(hidden_size=3, max_iter=1, patch_length=2,
                            random_state=0).fit(X, Y_CLASS)
    stream = clf.stream()
    stream.predict_proba(X[:1, :3])
    assert stream.n_steps_seen == 3
    clf.fit(X, (Y_CLASS > 0).astype(int))  # two classes now, new networks
    with pytest.raises(ValueError, match="fitted anew since this stream was made"):
        stream.predict_proba(X[:1, 3:4])
    assert stream.n_steps_seen == 3  # the refused step is not counted
    stream.reset()
    with pytest.raises(ValueError, match="fitted anew"):
        stream.predict(X[:1, :1])
    assert stream.n_steps_seen == 0
    fresh = clf.stream()
    for stop, chunk in _chunked(X[:1]):
        proba = fresh.predict_proba(chunk)
    np.testing.assert_allclose(proba, clf.predict_proba(X[:1]), rtol=1e-5)
    assert proba.shape == (1, 2)
    # More members after a refit with an ensemble: refused too.
    clf.set_params(n_ensemble=2).fit(X, Y_CLASS)
    with pytest.raises(ValueError, match="fitted anew"):
        fresh.predict(X[:1, :1])


def test_a_2d_chunk_for_several_channels_says_how_to_pass_one_step():
    clf = ChannelClassifier(hidden_size=3, max_iter=1, random_state=0).fit(X, Y_CLASS)
    with pytest.raises(ValueError, match=r"X\[:, None, :\]"):
        clf.stream().predict(X[:1, 0])  # one step, (batch, channels)


@pytest.mark.parametrize("readout", ["mean", "max", "mean_max"])
def test_running_pool_equals_pool_of_the_whole_prefix(readout):
    out = RNG.normal(size=(3, 9, 4))
    running = RunningPool(readout, 3, 4)
    running.add(out[:, :4])
    running.add(out[:, 4:7])
    np.testing.assert_allclose(running.features(out[:, 7:]), pool(out, None, readout)[0],
                               rtol=1e-12)
    np.testing.assert_allclose(running.features(), pool(out[:, :7], None, readout)[0],
                               rtol=1e-12)
    assert running.count == 7  # the pending steps were not kept
    with pytest.raises(ValueError, match="no steps"):
        RunningPool(readout, 1, 1).features()
    with pytest.raises(ValueError, match="readout"):
        RunningPool("last", 1, 1)
