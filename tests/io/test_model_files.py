"""numlstm.io: model files without pickle, atomic saving, damaged files, pickling."""

import io
import json
import os
import pathlib
import pickle
import warnings
import zipfile

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted

import numlstm.io.model_files as nio
from numlstm import LSTM, LSTMClassifier, LSTMRegressor
from numlstm.io import FORMAT_VERSION, ModelFileError, load, read_header, save

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 7, 2))
X_TEST = RNG.normal(size=(9, 11, 2))
RAGGED = [RNG.normal(size=(n, 2)) for n in (3, 7, 5, 1, 6, 4, 7, 2) * 4]


def small(cls, **kwargs):
    options = dict(hidden_size=4, max_iter=3, random_state=0)
    options.update(kwargs)
    return cls(**options)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def roundtrip(obj, tmp_path, name="model.npz", **kwargs):
    path = tmp_path / name
    save(obj, path, **kwargs)
    return load(path)


def assert_same_fitted_state(a, b):
    assert type(a) is type(b)
    assert a.get_params() == b.get_params() or repr(a.get_params()) == repr(b.get_params())
    for name in ("n_features_in_", "n_iter_", "t_", "loss_", "best_loss_",
                 "best_validation_score_", "validation_scores_", "loss_curve_"):
        assert getattr(a, name) == getattr(b, name), name
    assert same_bits(a.network_.get_flat_params(), b.network_.get_flat_params())


# ----------------------------------------------------------------- round trips
@pytest.fixture(scope="module")
def regressors():
    y1 = X[:, :, 0].sum(axis=1)
    y2 = np.column_stack([y1, X[:, -1, 1] * 3 + 10])
    y3 = np.cumsum(X, axis=1)[:, :, :1]
    y_ragged = [np.cumsum(s[:, 0]) for s in RAGGED]
    y_ragged_sum = np.array([s[:, 0].sum() for s in RAGGED])
    return {
        "seq2one": (small(LSTMRegressor).fit(X, y1), X_TEST),
        "multioutput": (small(LSTMRegressor, num_layers=2, bidirectional=True, dropout=0.2)
                        .fit(X, y2), X_TEST),
        "seq2seq-f64": (small(LSTMRegressor, dtype="float64").fit(X, y3), X_TEST),
        "ragged-seq2seq": (small(LSTMRegressor).fit(RAGGED, y_ragged), RAGGED[:7]),
        "lbfgs": (small(LSTMRegressor, solver="lbfgs", dtype=np.float64).fit(X, y1), X_TEST),
        "early-stopping": (small(LSTMRegressor, early_stopping=True, solver="sgd",
                                 max_iter=4).fit(X, y1), X_TEST),
        "series-scaling-ragged": (small(LSTMRegressor, input_scaling="series",
                                        patch_length=2).fit(RAGGED, y_ragged_sum), RAGGED[:7]),
    }


@pytest.mark.parametrize("case", ["seq2one", "multioutput", "seq2seq-f64", "ragged-seq2seq",
                                  "lbfgs", "early-stopping", "series-scaling-ragged"])
def test_regressor_round_trip_is_bit_exact(regressors, tmp_path, case):
    est, X_new = regressors[case]
    loaded = roundtrip(est, tmp_path)
    assert_same_fitted_state(est, loaded)
    assert same_bits(loaded.predict(X_new), est.predict(X_new))
    assert same_bits(loaded.predict(X), est.predict(X)) if "ragged" not in case else True
    assert loaded.n_outputs_ == est.n_outputs_
    if case == "series-scaling-ragged":
        assert loaded.input_scaling_ == "series"
        assert same_bits(loaded._stat_scale, est._stat_scale)
    if case == "early-stopping":
        assert loaded.validation_scores_ and loaded.validation_scores_ == est.validation_scores_


LABELS = {
    "str": np.where(X[:, :, 0].sum(axis=1) > 0, "up", "down"),
    "object-str": np.where(X[:, :, 0].sum(axis=1) > 0, "up", "down").astype(object),
    "int-multiclass": np.digitize(X[:, :, 0].sum(axis=1), [-1.0, 1.0]) * 10 - 7,
    "float": np.where(X[:, :, 1].mean(axis=1) > 0, 1.0, -3.0),
    "bool": X[:, 0, 0] > 0,
}


@pytest.mark.parametrize("kind", list(LABELS))
def test_classifier_round_trip_is_bit_exact(tmp_path, kind):
    est = small(LSTMClassifier).fit(X, LABELS[kind])
    loaded = roundtrip(est, tmp_path)
    assert loaded.classes_.dtype == est.classes_.dtype
    assert np.array_equal(loaded.classes_, est.classes_)
    assert_same_fitted_state(est, loaded)
    assert same_bits(loaded.predict_proba(X_TEST), est.predict_proba(X_TEST))
    pred = loaded.predict(X_TEST)
    assert pred.dtype == est.predict(X_TEST).dtype
    assert np.array_equal(pred, est.predict(X_TEST))
    assert loaded.score(X, LABELS[kind]) == est.score(X, LABELS[kind])


def test_object_labels_of_mixed_types_are_refused(tmp_path):
    est = small(LSTMClassifier).fit(X, LABELS["str"])
    est.classes_ = np.array(["down", 1], dtype=object)
    with pytest.raises(TypeError, match="without pickle"):
        save(est, tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


def test_unfitted_estimators_and_parameter_types(tmp_path):
    est = LSTMRegressor(hidden_size=3, dtype=np.float64, batch_size=5, clip_grad_norm=None,
                        random_state=np.random.RandomState(7), device="auto")
    loaded = roundtrip(est, tmp_path)
    with pytest.raises(NotFittedError):
        check_is_fitted(loaded)
    params = loaded.get_params()
    assert params.pop("dtype") is np.float64
    rs = params.pop("random_state")
    assert isinstance(rs, np.random.RandomState) and rs is not est.random_state
    assert rs.randint(0, 2**31 - 1) == est.random_state.randint(0, 2**31 - 1)
    expected = est.get_params()
    del expected["dtype"], expected["random_state"]
    assert params == expected
    for classifier in (LSTMClassifier(), LSTMClassifier(random_state=3, solver="lbfgs")):
        assert roundtrip(classifier, tmp_path).get_params() == classifier.get_params()


def test_continued_training_after_load_matches(tmp_path):
    """Seeds, RNG states and weights are saved: warm-start fits continue identically."""
    y = X[:, :, 0].sum(axis=1)
    est = small(LSTMRegressor, num_layers=2, dropout=0.3).fit(X, y)
    loaded = roundtrip(est, tmp_path)
    for model in (est, loaded):
        model.set_params(warm_start=True, max_iter=2).fit(X, y)
    assert_same_fitted_state(est, loaded)
    assert same_bits(loaded.predict(X_TEST), est.predict(X_TEST))
    # partial_fit continues with a fresh optimizer, from the same weights.
    again = roundtrip(est, tmp_path, "again.npz")
    again.partial_fit(X, y)
    assert again.n_iter_ == est.n_iter_ + 1


def test_lstm_layer_round_trip(tmp_path):
    layer = LSTM(3, 5, num_layers=2, bidirectional=True, dropout=0.4, dtype=np.float64,
                 random_state=1, input_dropout=0.2)
    loaded = roundtrip(layer, tmp_path)
    assert type(loaded) is LSTM and repr(loaded) == repr(layer)
    assert loaded.training is True
    assert same_bits(loaded.flat_parameters, layer.flat_parameters)
    x = np.random.default_rng(5).normal(size=(4, 6, 3))
    # Same dropout masks: the random generator's state is saved too.
    assert same_bits(loaded.forward(x)[0], layer.forward(x)[0])
    layer.eval()
    evaluated = roundtrip(layer, tmp_path, "eval.npz")
    assert evaluated.training is False
    assert same_bits(evaluated.forward(x, requires_grad=False)[0],
                     layer.forward(x, requires_grad=False)[0])


def test_file_is_a_plain_npz_without_pickle(regressors, tmp_path):
    est, _ = regressors["multioutput"]
    path = tmp_path / "model.npz"
    save(est, path)
    with zipfile.ZipFile(path) as zf:
        assert all(name.endswith(".npy") for name in zf.namelist())
    with np.load(path, allow_pickle=False) as archive:
        header = json.loads(archive["__numlstm__"].tobytes().decode("utf-8"))
        for name in archive.files:
            assert not archive[name].dtype.hasobject
    assert header["format"] == "numlstm-model"
    assert header["format_version"] == FORMAT_VERSION == 6
    assert header["class"] == "LSTMRegressor"
    assert header["params"]["hidden_size"] == 4
    assert set(header["arrays"]) == set(archive.files) - {"__numlstm__"}
    assert read_header(path) == header
    # Loading from an open binary file works too.
    with open(path, "rb") as f:
        assert same_bits(load(f).predict(X_TEST), est.predict(X_TEST))
    # The compressed variant is read by the same code.
    small_file = tmp_path / "compressed.npz"
    save(est, small_file, compress=True)
    assert same_bits(load(small_file).predict(X_TEST), est.predict(X_TEST))


def test_save_refuses_other_objects(tmp_path):
    class MyRegressor(LSTMRegressor):
        pass

    for obj in (MyRegressor(), {"weights": np.ones(3)}, np.ones(3)):
        with pytest.raises(TypeError, match="pickle"):
            save(obj, tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


def test_attribute_values_of_every_supported_kind(regressors, tmp_path):
    est, _ = regressors["seq2one"]
    est = pickle.loads(pickle.dumps(est))
    extra = {
        "tuple": (1, -2.5, "s", None, True),
        "scalars": [np.inf, -np.inf, 0.1, np.float32(0.1), np.int16(-3), np.bool_(True),
                    np.str_("label"), np.datetime64("2024-01-01T10", "h"),
                    np.longdouble(1) / 3],  # the last: wider than a Python float
        "path": pathlib.Path("runs") / "model.npz",
        "arrays": [np.arange(6, dtype=np.uint8).reshape(2, 3), np.array(["a", "bc"]),
                   np.array([b"x"]), np.array("2024-01-01", dtype="datetime64[D]")],
        "generator": np.random.default_rng(3),
        "dtypes": [np.float32, np.int8, np.dtype(">i2"), np.dtype("U3")],
        "nested": {"k": {"j": []}},
    }
    est._extra = extra
    loaded = roundtrip(est, tmp_path)._extra
    assert loaded.keys() == extra.keys()
    assert loaded["tuple"] == extra["tuple"] and type(loaded["tuple"]) is tuple
    for a, b in zip(loaded["scalars"], extra["scalars"]):
        assert a == b and type(a) is type(b)
    assert loaded["path"] == extra["path"] and isinstance(loaded["path"], pathlib.Path)
    for a, b in zip(loaded["arrays"], extra["arrays"]):
        assert same_bits(a, b)
    assert loaded["generator"].random() == extra["generator"].random()
    assert loaded["nested"] == extra["nested"]
    assert loaded["dtypes"] == extra["dtypes"]
    assert [type(d) for d in loaded["dtypes"]] == [type(d) for d in extra["dtypes"]]
    est.set_params(random_state=np.random.RandomState(2))
    assert roundtrip(est, tmp_path).random_state.rand() == est.random_state.rand()


def test_unsavable_attributes(regressors, tmp_path):
    est, _ = regressors["seq2one"]
    est = pickle.loads(pickle.dumps(est))
    est._scratch_handle = object()  # private and not storable: skipped with a warning
    with pytest.warns(UserWarning, match="skips LSTMRegressor._scratch_handle"):
        save(est, tmp_path / "m.npz")
    assert not hasattr(load(tmp_path / "m.npz"), "_scratch_handle")
    del est._scratch_handle
    est.extra_ = object()  # a public fitted attribute must not be lost silently
    with pytest.raises(TypeError, match="extra_"):
        save(est, tmp_path / "m.npz")


# ------------------------------------------------------------ damaged files
@pytest.fixture(scope="module")
def saved_classifier(tmp_path_factory):
    est = small(LSTMClassifier).fit(X, LABELS["int-multiclass"])
    path = tmp_path_factory.mktemp("model") / "clf.npz"
    save(est, path)
    return est, path.read_bytes()


def test_truncated_files_raise(saved_classifier):
    _, data = saved_classifier
    for size in sorted({0, 1, 3, 4, 10, 100, len(data) // 3, len(data) // 2,
                        len(data) - 100, len(data) - 22, len(data) - 1}):
        with pytest.raises(ModelFileError):
            load(io.BytesIO(data[:size]))


def test_corrupted_bytes_never_load_silently(saved_classifier):
    est, data = saved_classifier
    expected = est.predict_proba(X_TEST)
    positions = np.random.default_rng(0).choice(len(data), size=min(600, len(data)),
                                                replace=False)
    errors = 0
    for pos in positions:
        damaged = bytearray(data)
        damaged[pos] ^= 0x5A
        try:
            model = load(io.BytesIO(bytes(damaged)))
        except ModelFileError:
            errors += 1
            continue
        # A flip in bookkeeping bytes zip ignores (timestamps, ...) may load: it must be
        # the same model then.
        assert same_bits(model.predict_proba(X_TEST), expected), pos
    assert errors > len(positions) // 2


def rewrite(data, edit_header=None, edit_arrays=None):
    """Re-pack a model file after editing its header (dict) or arrays."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        members = {name: archive[name] for name in archive.files}
    header = json.loads(members["__numlstm__"].tobytes())
    if edit_arrays:
        edit_arrays(members, header)
    if edit_header:
        edit_header(header)
    members["__numlstm__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    out = io.BytesIO()
    np.savez(out, **members)
    out.seek(0)
    return out


def test_newer_format_version_is_refused(saved_classifier):
    _, data = saved_classifier

    def newer(header):
        header["format_version"] = FORMAT_VERSION + 1
        header["numlstm_version"] = "9.0"

    newer_version = f"format version {FORMAT_VERSION + 1}"
    with pytest.raises(ModelFileError, match=newer_version + ".*Upgrade numlstm"):
        load(rewrite(data, newer))
    with pytest.raises(ModelFileError, match=newer_version):
        read_header(rewrite(data, newer))
    for bad in (0, "1", None, 1.0, True):
        with pytest.raises(ModelFileError):
            load(rewrite(data, lambda h, bad=bad: h.update(format_version=bad)))


def test_unchanged_rewrite_still_loads(saved_classifier):
    est, data = saved_classifier
    assert same_bits(load(rewrite(data)).predict_proba(X_TEST), est.predict_proba(X_TEST))


@pytest.mark.parametrize("edit,match", [
    (lambda h: h.update({"class": "os.system"}), "unknown class"),
    (lambda h: h.update({"class": "LSTMNetwork"}), "unknown class"),
    (lambda h: h["attributes"].update({"__class__": 1}), "invalid attribute name"),
    (lambda h: h["attributes"].update({"predict": 1}), "invalid attribute name"),
    (lambda h: h["params"].update({"hidden_size": {"$pickle": "x"}}), "unknown value kind"),
    (lambda h: h["params"].update({"not_a_parameter": 3}), "unknown to LSTMClassifier"),
    (lambda h: h["attributes"]["network_"]["$network"]["lstm"].update(hidden_size=5),
     "flat_parameters"),
    (lambda h: h["attributes"]["network_"]["$network"]["lstm"].update(hidden_size=20_000),
     "flat_parameters has shape"),  # refused before allocating 6 GB
    (lambda h: h["attributes"]["network_"]["$network"]["lstm"].update(num_layers=0),
     "invalid layer sizes"),
    (lambda h: h["attributes"]["network_"]["$network"].update(n_outputs=2), "coef_"),
    (lambda h: h["attributes"].update(_x_mean={"$dtype": "O"}), "unsupported"),
    (lambda h: h["attributes"]["_random_state"]["$random_state"]["$dict"].update(
        bit_generator="os"), "bit generator"),
    (lambda h: h["arrays"].popitem(), "header lists"),
    (lambda h: h.pop("params"), "params"),
])
def test_tampered_headers_raise(saved_classifier, edit, match):
    _, data = saved_classifier
    with pytest.raises(ModelFileError, match=match):
        load(rewrite(data, edit))


def test_tampered_arrays_raise(saved_classifier):
    _, data = saved_classifier

    def change_weights(members, header):
        name = header["attributes"]["network_"]["$network"]["coef_"]["$array"]
        members[name] = members[name] + 1

    with pytest.raises(ModelFileError, match="checksum"):
        load(rewrite(data, edit_arrays=change_weights))

    def change_dtype(members, header):
        name = header["attributes"]["network_"]["$network"]["coef_"]["$array"]
        members[name] = members[name].astype(np.float64)
        header["arrays"][name]["dtype"] = "<f8"
        header["arrays"][name]["sha256"] = nio._sha256(members[name])

    with pytest.raises(ModelFileError, match="coef_ has dtype float64"):
        load(rewrite(data, edit_arrays=change_dtype))

    def add_object_array(members, header):
        members["a99"] = np.array([{"x": 1}], dtype=object)
        header["arrays"]["a99"] = {"dtype": "|O", "shape": [1], "sha256": ""}

    out = io.BytesIO()
    with np.load(rewrite(data, edit_arrays=add_object_array), allow_pickle=True) as a:
        members = {name: a[name] for name in a.files}
    np.savez(out, **members)
    out.seek(0)
    with pytest.raises(ModelFileError, match="allow_pickle"):
        load(out)


def test_files_that_are_not_models(tmp_path):
    cases = {
        "text.npz": b"hello, world\n",
        "empty.npz": b"",
        "pickle.pkl": pickle.dumps(LSTMRegressor()),
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    np.save(tmp_path / "array.npy", np.ones(3))
    np.savez(tmp_path / "other.npz", weights=np.ones(3))
    for name in [*cases, "array.npy", "other.npz"]:
        with pytest.raises(ModelFileError, match="not a numlstm model file"):
            load(tmp_path / name)
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as zf:
        zf.writestr("__numlstm__.npy", b"\x93NUMPY garbage")
    with pytest.raises(ModelFileError, match="corrupted"):
        load(tmp_path / "plain.zip")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")
    with pytest.raises(OSError):  # a directory: the OS error, not "corrupted"
        load(tmp_path)
    with pytest.raises(TypeError, match="seekable binary file"):
        load(12)
    assert issubclass(ModelFileError, ValueError)


# ----------------------------------------------------------------- atomicity
@pytest.fixture
def two_models():
    y = X[:, :, 0].sum(axis=1)
    return small(LSTMRegressor).fit(X, y), small(LSTMRegressor, random_state=1).fit(X, y)


class Crash(Exception):
    pass


def test_crash_while_writing_keeps_the_previous_file(tmp_path, monkeypatch, two_models):
    old, new = two_models
    path = tmp_path / "model.npz"
    save(old, path)
    before = path.read_bytes()

    real_savez = np.savez

    def savez_then_crash(file, **arrays):
        real_savez(file, **arrays)  # a partial archive is on disk...
        file.write(b"\0" * 1000)
        raise Crash("disk full")  # ...when the process dies

    monkeypatch.setattr(nio.np, "savez", savez_then_crash)
    with pytest.raises(Crash):
        save(new, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]  # the temporary file is gone
    assert same_bits(load(path).predict(X_TEST), old.predict(X_TEST))

    for target in ("fsync", "replace"):
        monkeypatch.setattr(os, target, lambda *a, **k: (_ for _ in ()).throw(Crash()))
        with pytest.raises(Crash):
            save(new, path)
        monkeypatch.undo()
        assert path.read_bytes() == before
        assert os.listdir(tmp_path) == ["model.npz"]

    save(new, path)
    assert same_bits(load(path).predict(X_TEST), new.predict(X_TEST))
    assert os.listdir(tmp_path) == ["model.npz"]


def test_killed_process_leaves_only_a_temporary_file(tmp_path, monkeypatch, two_models):
    """A crash that skips all clean-up (power loss, SIGKILL) leaves the old file."""
    old, new = two_models
    path = tmp_path / "model.npz"
    save(old, path)

    def die(*args, **kwargs):
        raise SystemExit("killed")  # propagates like a fatal signal

    monkeypatch.setattr(os, "replace", die)
    monkeypatch.setattr(os, "unlink", lambda p: None)  # no clean-up either
    with pytest.raises(SystemExit):
        save(new, path)
    monkeypatch.undo()
    assert same_bits(load(path).predict(X_TEST), old.predict(X_TEST))
    leftovers = [p for p in os.listdir(tmp_path) if p != "model.npz"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".model.npz.")
    assert leftovers[0].endswith(".tmp")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_saving_through_a_symbolic_link_replaces_its_target(tmp_path, two_models):
    """The link stays a link and the file it points to gets the new model (saving used
    to replace the link by a file of its own, leaving the target's old model)."""
    old, new = two_models
    target, link = tmp_path / "models" / "current.npz", tmp_path / "model.npz"
    target.parent.mkdir()
    save(old, target)
    link.symlink_to(target)
    save(new, link)
    assert link.is_symlink()
    assert same_bits(load(target).predict(X_TEST), new.predict(X_TEST))
    assert sorted(os.listdir(target.parent)) == ["current.npz"]  # no temporary file left


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_file_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = tmp_path / "model.npz"
        save(LSTM(2, 2), path)
        assert path.stat().st_mode & 0o777 == 0o644  # like any new file, not 0o600
        path.chmod(0o640)
        save(LSTM(2, 2), path)
        assert path.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its mode
        path.chmod(0o664)  # with bits the umask would remove from a new file
        save(LSTM(2, 2), path)
        assert path.stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(umask)


def test_saving_into_a_missing_folder_names_the_path(tmp_path):
    path = tmp_path / "no such folder" / "model.npz"
    with pytest.raises(FileNotFoundError, match=r"cannot write .*no such folder/model\.npz"):
        save(LSTM(2, 2), path)


# ------------------------------------------------------------------- pickling
def test_plain_pickle_keeps_working(regressors, tmp_path):
    for est, X_new in regressors.values():
        clone = pickle.loads(pickle.dumps(est))
        assert same_bits(clone.predict(X_new), est.predict(X_new))
    clf = small(LSTMClassifier).fit(X, LABELS["str"])
    for obj in (clf, roundtrip(clf, tmp_path)):
        clone = pickle.loads(pickle.dumps(obj))
        assert same_bits(clone.predict_proba(X_TEST), clf.predict_proba(X_TEST))
    layer = LSTM(2, 3, random_state=0)
    clone = pickle.loads(pickle.dumps(roundtrip(layer, tmp_path, "layer.npz")))
    assert same_bits(clone.flat_parameters, layer.flat_parameters)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert len(pickle.dumps(LSTMRegressor())) < 2000


def _with_member(source, target, member, write):
    """Copy the archive ``source`` to ``target`` with ``member`` written by ``write``."""
    with zipfile.ZipFile(source) as zin, \
            zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename == member:
                with zout.open(member, "w", force_zip64=True) as out:
                    write(out)
            else:
                zout.writestr(info.filename, zin.read(info.filename))


def test_a_member_that_inflates_beyond_its_listed_array_is_refused_unread(tmp_path):
    """A zip bomb: a compressed member that inflates to far more than the array the
    header lists. It is refused from the zip directory's sizes, before inflating (a
    3 MB file of this kind used to take 3 GiB of memory to load)."""
    good, bomb = tmp_path / "layer.npz", tmp_path / "bomb.npz"
    save(LSTM(3, 4, random_state=0), good)
    with zipfile.ZipFile(good) as archive:
        member = next(name for name in archive.namelist() if name != "__numlstm__.npy")
    n_values = 2**24  # 64 MiB of float32 zeros, a few hundred KiB compressed

    def write(out):
        np.lib.format.write_array_header_1_0(
            out, {"descr": "<f4", "fortran_order": False, "shape": (n_values,)})
        zeros = bytes(2**22)
        for _ in range(n_values * 4 // len(zeros)):
            out.write(zeros)

    _with_member(good, bomb, member, write)
    assert os.path.getsize(bomb) < 2**20
    with pytest.raises(ModelFileError, match="inflates to"):
        load(bomb)

    def huge_header(out):  # the JSON header too is bounded before it is read
        np.lib.format.write_array_header_1_0(
            out, {"descr": "|u1", "fortran_order": False, "shape": (2**27,)})
        zeros = bytes(2**22)
        for _ in range(2**27 // len(zeros)):
            out.write(zeros)

    _with_member(good, bomb, "__numlstm__.npy", huge_header)
    with pytest.raises(ModelFileError, match="the header inflates to"):
        load(bomb)
