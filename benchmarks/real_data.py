"""numlstm's default estimators on every time-series data set bundled with sktime.

For each classification and regression data set that ships inside sktime (its
``sktime/datasets/data`` folder, read with sktime's ``load_from_tsfile``; nothing is
downloaded), this fits :class:`numlstm.LSTMClassifier` / :class:`numlstm.LSTMRegressor`
with its defaults (only ``random_state`` is set) over several seeds and at 1 and 2 Numba
threads, and scores it on the archive's test split next to baselines computed in the same
run:

* 1-NN with the Euclidean distance on the zero-padded, flattened series
  (``KNeighborsClassifier`` / ``KNeighborsRegressor``, ``n_neighbors=1``);
* scikit-learn's ``MLPClassifier()`` (defaults, over the same seeds) for classification,
  ``RidgeCV()`` (defaults) for regression, on the same flattened series;
* published test accuracies of 1-NN DTW (UCR archive, Dau et al. 2019) and FCN
  (Fawaz et al. 2019), where they exist (constants below, with their sources).

Scores: test accuracy for classification, test RMSE for regression (R^2 printed too).
The issue's bars, per data set and thread count:

* classification: numlstm's mean accuracy >= max(1-NN Euclidean, MLP mean), and its worst
  seed >= 1-NN Euclidean;
* regression: numlstm's mean RMSE <= RidgeCV's RMSE, and its worst seed's RMSE <= 1-NN's;
* every default fit (2 threads) under two minutes.

Usage (from the repository root)::

    python benchmarks/real_data.py                # all data sets, 5 seeds, 1 and 2 threads
    python benchmarks/real_data.py --datasets GunPoint Tecator --seeds 3 --threads 2
    python benchmarks/real_data.py --out results.json --plot real_data.png
    python benchmarks/real_data.py --from-json a.json b.json --plot real_data.png  # no fits
    python benchmarks/real_data.py --params n_ensemble=5  # other settings than the defaults
    python benchmarks/real_data.py --quick        # CI smoke run, well under a minute

``--quick`` fits two tiny data sets with 2 seeds and ``max_iter=5`` (so its scores say
nothing about the defaults). Fit times are wall-clock seconds of ``fit`` after the kernels
were compiled; other processes on the machine inflate them, so the load average is printed
(and stored) before and after each data set.
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

if __package__ in (None, ""):  # run as a script from a checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numba  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import RidgeCV  # noqa: E402
from sklearn.metrics import r2_score  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

import numlstm  # noqa: E402
from numlstm import LSTMClassifier, LSTMRegressor  # noqa: E402

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.real_data
    from compare import cpu_model
except ImportError:
    from .compare import cpu_model

#: The time-series classification / regression data sets in sktime/datasets/data, with
#: their task. (The folder also holds forecasting series and CSV files; those are not
#: train/test collections and are left out.)
DATASETS = {
    "ACSF1": "classification",
    "ArrowHead": "classification",
    "BasicMotions": "classification",
    "GunPoint": "classification",
    "ItalyPowerDemand": "classification",
    "JapaneseVowels": "classification",
    "OSULeaf": "classification",
    "PLAID": "classification",
    "UnitTest": "classification",
    "Covid3Month": "regression",
    "Tecator": "regression",
}

#: Small data sets for ``--quick`` (one of each task).
QUICK_DATASETS = ["UnitTest", "Covid3Month"]
QUICK_SEEDS = 2
QUICK_MAX_ITER = 5

#: Published 1-NN DTW test accuracy, 1 - error rate of the UCR archive's summary table
#: (DataSummary.csv, column "DTW (learned_w)", window in % in brackets; Dau et al. 2019,
#: "The UCR time series archive", IEEE/CAA J. Autom. Sinica 6(6), and
#: https://www.cs.ucr.edu/~eamonn/time_series_data_2018/). Only UCR univariate sets: the
#: multivariate BasicMotions and JapaneseVowels are not in that table, UnitTest is
#: sktime's own subset of Chinatown.
PUBLISHED_DTW = {
    "ACSF1": 1 - 0.3800,             # w = 4
    "ArrowHead": 1 - 0.2000,         # w = 0
    "GunPoint": 1 - 0.0867,          # w = 0
    "ItalyPowerDemand": 1 - 0.0447,  # w = 0
    "OSULeaf": 1 - 0.3884,           # w = 7
    "PLAID": 1 - 0.1657,             # w = 12
}

#: The same table's 1-NN Euclidean error rates ("ED (w=0)"): a check that the bundled
#: splits are the archive's (the 1-NN computed here reproduces them on the equal-length
#: sets; PLAID's series vary in length, and the archive's figure was not computed on
#: zero-padded series, so it is not reproduced here).
PUBLISHED_1NN_EUCLIDEAN = {
    "ACSF1": 1 - 0.4600,
    "ArrowHead": 1 - 0.2000,
    "GunPoint": 1 - 0.0867,
    "ItalyPowerDemand": 1 - 0.0447,
    "OSULeaf": 1 - 0.4793,
    "PLAID": 1 - 0.4767,
}

#: Published FCN test accuracy, mean of 10 runs: Fawaz, Forestier, Weber, Idoumghar and
#: Muller (2019), "Deep learning for time series classification: a review", Data Min.
#: Knowl. Disc. 33(4), 917-963; UCR/UEA 2015 archive table (ArrowHead, Gun_Point,
#: ItalyPowerDemand, OSULeaf) and Baydogan's MTS archive table (JapaneseVowels), as in
#: the authors' results/results-uea-avg-std.csv and results-mts-avg-std.csv
#: (github.com/hfawaz/dl-4-tsc). ACSF1 and PLAID joined the archive in 2018 and
#: BasicMotions is not in the MTS archive: no published FCN figure for them.
PUBLISHED_FCN = {
    "ArrowHead": 0.843,
    "GunPoint": 1.000,
    "ItalyPowerDemand": 0.961,
    "JapaneseVowels": 0.993,
    "OSULeaf": 0.977,
}

FIT_SECONDS_LIMIT = 120.0  # the bar for one default fit on two cores


# --------------------------------------------------------------------------- data
def sktime_data_dir():
    """The folder of data sets bundled inside the installed sktime."""
    import sktime

    return os.path.join(os.path.dirname(sktime.__file__), "datasets", "data")


def load_split(name, split, task):
    """Load one split of a bundled data set.

    Parameters
    ----------
    name : str
        Data set name (a folder of ``sktime/datasets/data``).
    split : {"TRAIN", "TEST"}
        Which of the archive's splits.
    task : {"classification", "regression"}
        Regression targets are returned as floats.

    Returns
    -------
    series : list of ndarray
        One ``(n_timesteps_i, n_channels)`` float array per series (numlstm's layout).
    target : ndarray
        Class labels (str) or regression targets (float).
    """
    from sktime.datasets import load_from_tsfile

    path = os.path.join(sktime_data_dir(), name, f"{name}_{split}.ts")
    frame, target = load_from_tsfile(path, return_data_type="nested_univ")
    series = []
    for row in range(len(frame)):
        channels = [np.asarray(frame.iloc[row, c], dtype=np.float64)
                    for c in range(frame.shape[1])]
        series.append(np.stack(channels, axis=1))  # sktime: channels first; numlstm: time first
    target = np.asarray(target)
    if task == "regression":
        target = target.astype(np.float64)
    return series, target


def as_estimator_input(series):
    """A 3-D array when all series have one length, else the list (numlstm pads it)."""
    if len({s.shape[0] for s in series}) == 1:
        return np.stack(series)
    return series


def flatten_padded(series, length):
    """Zero-pad each series to ``length`` steps and flatten it (time-major) to a vector."""
    n_channels = series[0].shape[1]
    out = np.zeros((len(series), length * n_channels))
    for i, s in enumerate(series):
        out[i, :s.size] = s.reshape(-1)
    return out


def describe(train, test):
    """Sizes, length (``"min-max"`` if unequal) and channels of a data set."""
    lengths = [s.shape[0] for s in train + test]
    low, high = min(lengths), max(lengths)
    return {"n_train": len(train), "n_test": len(test), "n_channels": int(train[0].shape[1]),
            "length_min": int(low), "length_max": int(high),
            "length": str(low) if low == high else f"{low}-{high}"}


# --------------------------------------------------------------------------- scores
def rmse(y_true, y_pred):
    return float(np.sqrt(np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2)))


def summarize(values, higher_is_better):
    """Mean, standard deviation (ddof=1) and worst of a list of scores."""
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()),
            "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "worst": float(values.min() if higher_is_better else values.max()),
            "best": float(values.max() if higher_is_better else values.min()),
            "n": int(len(values))}


def baselines(task, flat_train, y_train, flat_test, y_test, seeds):
    """1-NN Euclidean and MLP (classification) or RidgeCV (regression) on flattened series."""
    result = {}
    if task == "classification":
        knn = KNeighborsClassifier(n_neighbors=1).fit(flat_train, y_train)
        result["knn"] = {"score": float(knn.score(flat_test, y_test))}
        scores, seconds = [], []
        for seed in seeds:
            start = time.perf_counter()
            mlp = MLPClassifier(random_state=seed).fit(flat_train, y_train)
            seconds.append(time.perf_counter() - start)
            scores.append(float(mlp.score(flat_test, y_test)))
        result["mlp"] = dict(summarize(scores, True), scores=scores, seeds=list(seeds),
                             fit_seconds=seconds, fit_seconds_mean=float(np.mean(seconds)))
    else:
        knn = KNeighborsRegressor(n_neighbors=1).fit(flat_train, y_train)
        pred = knn.predict(flat_test)
        result["knn"] = {"score": rmse(y_test, pred), "r2": float(r2_score(y_test, pred))}
        ridge = RidgeCV().fit(flat_train, y_train)
        pred = ridge.predict(flat_test)
        result["ridge"] = {"score": rmse(y_test, pred), "r2": float(r2_score(y_test, pred))}
    return result


def bars(task, lstm, base):
    """Whether numlstm's scores at one thread count meet the issue's bars."""
    knn = base["knn"]["score"]
    if task == "classification":
        target = max(knn, base["mlp"]["mean"])
        mean_ok = lstm["mean"] >= target
        worst_ok = lstm["worst"] >= knn
    else:
        target = base["ridge"]["score"]
        mean_ok = lstm["mean"] <= target
        worst_ok = lstm["worst"] <= knn
    return {"mean_bar": float(target), "mean_met": bool(mean_ok), "worst_met": bool(worst_ok),
            "met": bool(mean_ok and worst_ok),
            "fit_under_limit": bool(lstm["fit_seconds_max"] < FIT_SECONDS_LIMIT)}


def summarize_fits(task, fits, base):
    """numlstm's summary at one thread count: scores, fit times and bars."""
    summary = summarize([f["score"] for f in fits], task == "classification")
    summary["fit_seconds_mean"] = float(np.mean([f["fit_seconds"] for f in fits]))
    summary["fit_seconds_max"] = float(np.max([f["fit_seconds"] for f in fits]))
    if task == "regression":
        summary["r2_mean"] = float(np.mean([f["r2"] for f in fits]))
    summary["fits"] = fits
    summary["bars"] = bars(task, summary, base)
    return summary


def merge_results(results):
    """Combine runs of one data set over different seeds (``--first-seed``) into one result.

    The fits and the MLP's scores of every seed are pooled (a seed measured twice keeps
    its first measurement) and the summaries and bars are computed again.
    """
    merged = {}
    for result in results:
        name = result["name"]
        if name not in merged:
            merged[name] = json.loads(json.dumps(result))  # a copy
            continue
        into = merged[name]
        task = into["task"]
        base = into["baselines"]
        if "mlp" in base:
            other = result["baselines"]["mlp"]
            seen = set(base["mlp"].get("seeds", range(len(base["mlp"]["scores"]))))
            base["mlp"]["seeds"] = sorted(seen)
            for seed, score in zip(other.get("seeds", range(len(other["scores"]))),
                                   other["scores"]):
                if seed not in seen:
                    base["mlp"]["seeds"].append(seed)
                    base["mlp"]["scores"].append(score)
            base["mlp"].update(summarize(base["mlp"]["scores"], True))
        for n_threads, lstm in result["numlstm"].items():
            fits = into["numlstm"].get(n_threads, {}).get("fits", [])
            seen = {f["seed"] for f in fits}
            fits = fits + [f for f in lstm["fits"] if f["seed"] not in seen]
            into["numlstm"][n_threads] = summarize_fits(task, fits, base)
        into["load_after"] = result["load_after"]
    return list(merged.values())


# --------------------------------------------------------------------------- fitting
def load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def warm_up(max_threads):
    """Compile (or load from numba's cache) the float32 kernels outside the timed fits."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 5, 2))
    ragged = [rng.normal(size=(n, 2)) for n in (3, 5, 4, 2) * 4]
    for threads in sorted({1, max_threads}):
        numba.set_num_threads(threads)
        for data in (X, ragged):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                LSTMClassifier(hidden_size=4, max_iter=1, random_state=0).fit(
                    data, np.arange(16) % 2)
                LSTMRegressor(hidden_size=4, max_iter=1, random_state=0).fit(
                    data, rng.normal(size=16))


def timed_fit(Estimator, params, seed, X, y):
    """``Estimator(random_state=seed, **params)`` fitted on ``X, y`` (convergence warnings
    silenced: the budget ends some fits), and the seconds ``fit`` took."""
    model = Estimator(random_state=seed, **params)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return model, time.perf_counter() - start


def run_dataset(name, seeds, threads, estimator_params, log):
    """Fit numlstm and the baselines on one data set; return a JSON-ready dict."""
    task = DATASETS[name]
    train, y_train = load_split(name, "TRAIN", task)
    test, y_test = load_split(name, "TEST", task)
    info = describe(train, test)
    X_train, X_test = as_estimator_input(train), as_estimator_input(test)
    flat_train = flatten_padded(train, info["length_max"])
    flat_test = flatten_padded(test, info["length_max"])
    load_before = load_average()
    log(f"\n{name} ({task}): {info['n_train']} train / {info['n_test']} test, length "
        f"{info['length']}, {info['n_channels']} channel(s); load average {load_before}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        base = baselines(task, flat_train, y_train, flat_test, y_test, seeds)
    if task == "classification":
        log(f"  1-NN Euclidean {base['knn']['score']:.4f}; MLPClassifier mean "
            f"{base['mlp']['mean']:.4f} (sd {base['mlp']['sd']:.4f}, worst "
            f"{base['mlp']['worst']:.4f})")
    else:
        log(f"  1-NN RMSE {base['knn']['score']:.4g} (R^2 {base['knn']['r2']:.3f}); RidgeCV "
            f"RMSE {base['ridge']['score']:.4g} (R^2 {base['ridge']['r2']:.3f})")

    Estimator = LSTMClassifier if task == "classification" else LSTMRegressor
    per_threads = {}
    for n_threads in threads:
        numba.set_num_threads(n_threads)
        fits = []
        for seed in seeds:
            model, seconds = timed_fit(Estimator, estimator_params, seed, X_train, y_train)
            pred = model.predict(X_test)
            fit = {"seed": seed, "fit_seconds": seconds, "n_iter": int(model.n_iter_),
                   "load_after": load_average()}
            if task == "classification":
                fit["score"] = float(np.mean(pred == y_test))
                text = f"accuracy {fit['score']:.4f}"
            else:
                fit["score"] = rmse(y_test, pred)
                fit["r2"] = float(r2_score(y_test, pred))
                text = f"RMSE {fit['score']:.4g} (R^2 {fit['r2']:.3f})"
            fits.append(fit)
            log(f"  numlstm {n_threads} thread(s), seed {seed}: {text}, {model.n_iter_} "
                f"epochs, fit {seconds:.1f} s, load {fit['load_after'][0]:.2f}")
        per_threads[str(n_threads)] = summarize_fits(task, fits, base)

    published = {}
    if name in PUBLISHED_DTW:
        published["dtw"] = PUBLISHED_DTW[name]
    if name in PUBLISHED_FCN:
        published["fcn"] = PUBLISHED_FCN[name]
    if name in PUBLISHED_1NN_EUCLIDEAN:
        published["knn_euclidean"] = PUBLISHED_1NN_EUCLIDEAN[name]
    return dict(info, name=name, task=task,
                metric="accuracy" if task == "classification" else "rmse",
                y_test_sd=float(np.std(y_test)) if task == "regression" else None,
                baselines=base, published=published, numlstm=per_threads,
                load_before=load_before, load_after=load_average())


# --------------------------------------------------------------------------- output
def _fmt(value, task):
    if value is None:
        return "-"
    return f"{100 * value:.2f}" if task == "classification" else f"{value:.4g}"


def bar_text(result):
    """"yes" / "no" per thread count, and why not."""
    parts = []
    for n_threads, lstm in result["numlstm"].items():
        b = lstm["bars"]
        why = [w for w, ok in (("mean", b["mean_met"]), ("worst", b["worst_met"])) if not ok]
        parts.append(f"{n_threads}t: " + ("yes" if b["met"] else "no (" + ",".join(why) + ")"))
    return "; ".join(parts)


def table(results):
    """The final plain-text table (accuracy in %, RMSE in the target's units)."""
    header = ["data set", "task", "train/test", "length", "ch", "threads", "numlstm mean",
              "sd", "worst", "fit s (max)", "1-NN ED", "MLP / Ridge", "DTW*", "FCN*",
              "bars met"]
    rows = []
    for r in results:
        task = r["task"]
        base = r["baselines"]
        second = base["mlp"]["mean"] if task == "classification" else base["ridge"]["score"]
        for i, (n_threads, lstm) in enumerate(r["numlstm"].items()):
            first = i == 0
            rows.append([
                r["name"] if first else "", task[:5] if first else "",
                f"{r['n_train']}/{r['n_test']}" if first else "",
                r["length"] if first else "", str(r["n_channels"]) if first else "",
                n_threads, _fmt(lstm["mean"], task), _fmt(lstm["sd"], task),
                _fmt(lstm["worst"], task),
                f"{lstm['fit_seconds_mean']:.1f} ({lstm['fit_seconds_max']:.0f})",
                _fmt(base["knn"]["score"], task) if first else "",
                _fmt(second, task) if first else "",
                _fmt(r["published"].get("dtw"), task) if first else "",
                _fmt(r["published"].get("fcn"), task) if first else "",
                ("yes" if lstm["bars"]["met"] else "no")
                + ("" if lstm["bars"]["fit_under_limit"] else ", fit > 2 min"),
            ])
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    line = "  ".join("{:<%d}" % w for w in widths)
    out = [line.format(*header), "  ".join("-" * w for w in widths)]
    out += [line.format(*row) for row in rows]
    out.append("Accuracy in %, RMSE in the target's units; sd over seeds; worst = lowest "
               "accuracy / highest RMSE. 'bars met': mean >= max(1-NN ED, MLP mean) and worst "
               ">= 1-NN ED (regression: mean RMSE <= Ridge, worst RMSE <= 1-NN). "
               "*published: DTW from the UCR archive (Dau et al. 2019), FCN from Fawaz et "
               "al. 2019.")
    return "\n".join(out)


def rst_table(results):
    """The table as an reStructuredText ``list-table`` (for docs/real_data.rst)."""
    lines = [".. list-table::", "   :header-rows: 1", "",
             "   * - data set", "     - train / test", "     - length", "     - ch."]
    thread_counts = list(results[0]["numlstm"])
    for n_threads in thread_counts:
        lines.append(f"     - numlstm, {n_threads} thread{'s' if n_threads != '1' else ''}: "
                     "mean ± sd (worst)")
    lines += ["     - mean fit s (" + " / ".join(f"{t} thr." for t in thread_counts) + ")",
              "     - 1-NN ED", "     - MLP mean / RidgeCV", "     - 1-NN DTW [1]_",
              "     - FCN [2]_", "     - bars met (" + " / ".join(
                  f"{t} thr." for t in thread_counts) + ")"]
    for r in results:
        task = r["task"]
        base = r["baselines"]
        second = base["mlp"]["mean"] if task == "classification" else base["ridge"]["score"]
        lines += [f"   * - {r['name']}" + (" (RMSE)" if task == "regression" else ""),
                  f"     - {r['n_train']} / {r['n_test']}", f"     - {r['length']}",
                  f"     - {r['n_channels']}"]
        for n_threads in thread_counts:
            lstm = r["numlstm"].get(n_threads)
            lines.append("     - n/a" if lstm is None else
                         f"     - {_fmt(lstm['mean'], task)} ± {_fmt(lstm['sd'], task)} "
                         f"({_fmt(lstm['worst'], task)})")
        lines.append("     - " + " / ".join(
            f"{r['numlstm'][t]['fit_seconds_mean']:.1f}" if t in r["numlstm"] else "n/a"
            for t in thread_counts))
        lines += [f"     - {_fmt(base['knn']['score'], task)}", f"     - {_fmt(second, task)}",
                  f"     - {_fmt(r['published'].get('dtw'), task).replace('-', 'n/a')}",
                  f"     - {_fmt(r['published'].get('fcn'), task).replace('-', 'n/a')}"]
        lines.append("     - " + " / ".join(
            ("yes" if r["numlstm"][t]["bars"]["met"] else "no") if t in r["numlstm"] else "n/a"
            for t in thread_counts))
    return "\n".join(lines)


def plot(results, path):
    """numlstm's mean score against the best baseline, one point per data set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.transforms

    classification = [r for r in results if r["task"] == "classification"]
    regression = [r for r in results if r["task"] == "regression"]
    panels = [p for p in (classification, regression) if p]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5), squeeze=False)
    for ax, group in zip(axes[0], panels):
        task = group[0]["task"]
        xs, ys, placed, moved = [], [], [], 0
        for r in group:
            base = r["baselines"]
            if task == "classification":
                best = max(base["knn"]["score"], base["mlp"]["mean"])
                scale = 100.0
            else:  # RMSE divided by the test targets' standard deviation
                best = min(base["knn"]["score"], base["ridge"]["score"])
                scale = 1.0 / r["y_test_sd"]
            for k, (n_threads, lstm) in enumerate(r["numlstm"].items()):
                x, y = best * scale, lstm["mean"] * scale
                low, high = sorted((lstm["worst"] * scale, lstm["best"] * scale))
                shifted = matplotlib.transforms.offset_copy(  # side by side, not on top
                    ax.transData, fig=fig, x=4 * k - 2, units="points")
                # (max: the mean of equal scores may round past them)
                ax.errorbar(x, y, yerr=[[max(0.0, y - low)], [max(0.0, high - y)]],
                            fmt="o" if k == 0 else "s",
                            color=f"C{k}", ecolor=f"C{k}", capsize=3, markersize=5,
                            transform=shifted,
                            label=f"{n_threads} thread(s)" if r is group[0] else None)
                xs.append(x)
                ys.extend([y, low, high])
            # Labels of data sets whose points lie close together go one under another.
            near = 3.0 if task == "classification" else 0.03
            point = (best * scale, lstm["mean"] * scale)
            crowded = any(abs(point[0] - px) < near and abs(point[1] - py) < near
                          for px, py in placed)
            placed.append(point)
            if crowded:  # further down, one under another, with a line to the point
                moved += 1
                ax.annotate(r["name"], point, fontsize="x-small", ha="right",
                            xytext=(8, -37 - 11 * moved), textcoords="offset points",
                            arrowprops=dict(arrowstyle="-", color="0.5", linewidth=0.6))
            else:
                ax.annotate(r["name"], point, fontsize="x-small", xytext=(6, -10),
                            textcoords="offset points")
        lo, hi = min(xs + ys), max(xs + ys)
        pad = 0.05 * (hi - lo or 1)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", linestyle="--",
                linewidth=1)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        if task == "classification":
            ax.set_xlabel("best baseline: max(1-NN Euclidean, MLP mean) test accuracy (%)")
            ax.set_ylabel("numlstm LSTMClassifier() mean test accuracy (%)")
            ax.set_title("classification (above the diagonal: numlstm better)", fontsize="medium")
        else:
            ax.set_xlabel("best baseline: min(1-NN, RidgeCV) test RMSE / sd(y_test)")
            ax.set_ylabel("numlstm LSTMRegressor() mean test RMSE / sd(y_test)")
            ax.set_title("regression (below the diagonal: numlstm better)", fontsize="medium")
        ax.legend(fontsize="small", title="bars: worst to best seed", title_fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- main
def parse_value(text):
    """An estimator parameter value from the command line: int, float, bool, None or str."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"True": True, "False": False, "None": None}.get(text, text)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", metavar="NAME", choices=list(DATASETS),
                        help="data sets to run (default: all)")
    parser.add_argument("--seeds", type=int, default=5,
                        help="number of seeds: random_state = 0, ..., N-1 (default 5)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="start the seeds here (to add seeds to an earlier run; "
                             "--from-json pools the files)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="Numba thread counts (default: 1 2)")
    parser.add_argument("--quick", action="store_true",
                        help=f"CI smoke run: {', '.join(QUICK_DATASETS)}, {QUICK_SEEDS} seeds, "
                             f"max_iter={QUICK_MAX_ITER}")
    parser.add_argument("--params", nargs="+", metavar="NAME=VALUE", default=[],
                        help="estimator settings besides the defaults (e.g. n_ensemble=5)")
    parser.add_argument("--out", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--plot", metavar="FILE", help="save the accuracy plot (matplotlib)")
    parser.add_argument("--from-json", nargs="+", metavar="FILE",
                        help="no fitting: print the table (and --plot) of earlier --out files")
    parser.add_argument("--rst", action="store_true",
                        help="also print the table as reStructuredText (for the docs)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.from_json:
        results = []
        for path in args.from_json:
            with open(path) as f:
                results.extend(json.load(f)["results"])
        results = merge_results(results)
        print(table(results))
        if args.rst:
            print(rst_table(results))
        if args.plot:
            plot(results, args.plot)
        return 0

    names = args.datasets or list(DATASETS)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    estimator_params = {}
    for item in args.params:
        name, _, value = item.partition("=")
        estimator_params[name] = parse_value(value)
    if args.quick:
        names = args.datasets or QUICK_DATASETS
        seeds = seeds[:QUICK_SEEDS]
        estimator_params["max_iter"] = QUICK_MAX_ITER
    threads = [t for t in args.threads if 1 <= t <= numba.config.NUMBA_NUM_THREADS]
    if not threads:
        raise SystemExit(f"--threads: at most {numba.config.NUMBA_NUM_THREADS} on this machine")

    def log(text):
        print(text, flush=True)

    import sklearn
    import sktime

    environment = {
        "cpu": cpu_model(), "logical_cores": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "numlstm": numlstm.__version__, "numba": numba.__version__, "numpy": np.__version__,
        "sklearn": sklearn.__version__, "sktime": sktime.__version__,
        "python": platform.python_version(), "threads": threads, "seeds": seeds,
        "estimator_params": estimator_params, "quick": bool(args.quick),
        "load_before": load_average(),
    }
    log(f"CPU: {environment['cpu']}, {environment['logical_cores']} logical cores; "
        f"load average (1/5/15 min) {environment['load_before']} (other processes inflate "
        f"fit times)")
    log(f"versions: numlstm {numlstm.__version__}, numba {numba.__version__}, numpy "
        f"{np.__version__}, scikit-learn {sklearn.__version__}, sktime {sktime.__version__}; "
        f"seeds {seeds}, threads {threads}, estimator settings "
        f"{estimator_params or 'defaults (only random_state)'}")

    start = time.perf_counter()
    warm_up(max(threads))
    log(f"kernels compiled / loaded in {time.perf_counter() - start:.1f} s")
    results = []
    for name in names:
        results.append(run_dataset(name, seeds, threads, estimator_params, log))
        if args.out:  # after every data set, so that an interrupted run keeps what it has
            environment["load_after"] = load_average()
            with open(args.out, "w") as f:
                json.dump({"environment": environment, "results": results}, f, indent=1)
    environment["load_after"] = load_average()
    environment["seconds"] = time.perf_counter() - start
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"environment": environment, "results": results}, f, indent=1)

    log("")
    log(table(results))
    if args.rst:
        log(rst_table(results))
    for r in results:
        log(f"{r['name']}: bars {bar_text(r)}")
        if "knn_euclidean" in r["published"]:
            log(f"  1-NN Euclidean here {r['baselines']['knn']['score']:.4f}, published "
                f"{r['published']['knn_euclidean']:.4f}")
    log(f"load average before / after: {environment['load_before']} / "
        f"{environment['load_after']}; {environment['seconds']:.0f} s in all")
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
