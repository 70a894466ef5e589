"""Ablation of estimator settings on the data sets of ``real_data.py``, chosen on training data.

Each variant is a set of estimator parameters on top of the defaults. With
``--evaluate validation`` (the default) the archive's *training* split of every data set is
cut into a fitting part and a held-out part (stratified for classification, ``--holdout``
of it held out, the same cut for every variant and seed; ``--cuts N`` makes N such cuts,
each with its own seed, and averages over them too, since a 30% part of a small training
split is a handful of series), each variant is
fitted on the first part and scored on the second: the test split is never read, so a
variant chosen from these scores is chosen on training data. ``--evaluate test`` fits on
the whole training split and scores on the test split, to show on the test split what a
choice made on validation scores does.

A variant's ``_steps=N`` sets ``patch_length`` to the smallest that makes the longest
series of the data set at most ``N`` network steps (what ``patch_length="auto"`` does
with its own ``N``); ``_alpha_scale=S`` sets ``alpha`` to what ``alpha="auto"`` gives with
the factor ``S`` instead of 0.1 (``S * batch_size / n_samples``, default batch size).

Scores: accuracy for classification; for regression ``1 - RMSE / sd(y_heldout)`` so that
higher is better on every data set (1 is perfect, 0 is predicting the mean). Per variant
the script prints the mean score over the seeds per data set, the mean rank over data sets
(1 is best) and the mean fit time.

Usage (from the repository root)::

    python benchmarks/real_data_ablation.py --variants last:readout=last \\
        mean_max:readout=mean_max --datasets GunPoint ArrowHead --seeds 3 --out a.json
    python benchmarks/real_data_ablation.py --from-json a.json b.json   # the table again
"""

import argparse
import itertools
import json
import os
import sys

import numpy as np

if __package__ in (None, ""):  # run as a script from a checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numba  # noqa: E402
from scipy.stats import rankdata  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from numlstm import LSTMClassifier, LSTMRegressor  # noqa: E402
from numlstm.estimators._patches import auto_patch_length  # noqa: E402

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.*
    from compare import cpu_model
    from real_data import (DATASETS, as_estimator_input, load_split, parse_value,
                           timed_fit, warm_up)
except ImportError:
    from .compare import cpu_model
    from .real_data import (DATASETS, as_estimator_input, load_split, parse_value,
                            timed_fit, warm_up)

#: Seed of the one cut of each training split into fitting and held-out parts.
SPLIT_SEED = 12345


def parse_variant(text):
    """``name:param=value,param=value`` (or only ``name`` for the defaults)."""
    name, _, spec = text.partition(":")
    params = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        params[key] = parse_value(value)
    return name, params


def split_data(name, task, evaluate, holdout, cut=0):
    """(fitting series, fitting targets, scoring series, scoring targets) of cut ``cut``."""
    train, y_train = load_split(name, "TRAIN", task)
    if evaluate == "test":
        test, y_test = load_split(name, "TEST", task)
        return train, y_train, test, y_test
    index = np.arange(len(train))
    stratify = y_train if task == "classification" else None
    fit_idx, held_idx = train_test_split(index, test_size=holdout,
                                         random_state=SPLIT_SEED + cut,
                                         stratify=stratify)
    return ([train[i] for i in fit_idx], y_train[fit_idx],
            [train[i] for i in held_idx], y_train[held_idx])


def score(task, model, X, y):
    pred = model.predict(X)
    if task == "classification":
        return float(np.mean(pred == y))
    return float(1 - np.sqrt(np.mean((pred - y) ** 2)) / np.std(y))


def run(names, variants, seeds, evaluate, holdout, log, save=lambda results: None,
        cuts=1):
    """Fit every variant and seed on every data set (and on each of ``cuts`` cuts of its
    training split); ``save`` is called after each set."""
    results = []
    n_cuts = cuts if evaluate == "validation" else 1
    for name, cut in itertools.product(names, range(n_cuts)):
        task = DATASETS[name]
        X_fit, y_fit, X_score, y_score = split_data(name, task, evaluate, holdout, cut)
        X_fit, X_score = as_estimator_input(X_fit), as_estimator_input(X_score)
        Estimator = LSTMClassifier if task == "classification" else LSTMRegressor
        for variant, params in variants:
            params = dict(params)
            if "_steps" in params:  # a patch length from a largest number of network steps
                longest = max(len(series) for series in X_fit)
                params["patch_length"] = auto_patch_length(longest, params.pop("_steps"))
            if "_alpha_scale" in params:  # alpha="auto" with another factor than 0.1
                n_fit = len(X_fit)
                params["alpha"] = params.pop("_alpha_scale") * min(64, n_fit) / n_fit
            for seed in seeds:
                model, seconds = timed_fit(Estimator, params, seed, X_fit, y_fit)
                value = score(task, model, X_score, y_score)
                results.append({"dataset": name, "variant": variant, "params": params,
                                "seed": seed, "cut": cut, "score": value,
                                "fit_seconds": seconds,
                                "n_iter": int(model.n_iter_), "evaluate": evaluate})
                log(f"{name:17s} {variant:14s} cut {cut} seed {seed}: {value:.4f}, "
                    f"{model.n_iter_} epochs, {seconds:.1f} s")
        save(results)
    return results


def table(results):
    """Mean score per data set and variant, mean rank and fit time per variant."""
    names = list(dict.fromkeys(r["dataset"] for r in results))
    variants = list(dict.fromkeys(r["variant"] for r in results))
    means = np.full((len(names), len(variants)), np.nan)
    worst = np.full_like(means, np.nan)
    seconds = np.zeros(len(variants))
    for j, v in enumerate(variants):
        seconds[j] = np.mean([r["fit_seconds"] for r in results if r["variant"] == v])
        for i, n in enumerate(names):
            values = [r["score"] for r in results if r["variant"] == v and r["dataset"] == n]
            if values:
                means[i, j] = np.mean(values)
                worst[i, j] = np.min(values)
    complete = ~np.isnan(means).any(axis=1)
    ranks = np.array([rankdata(-row) for row in means[complete]])
    width = max(12, *(len(v) for v in variants))
    lines = ["data set".ljust(18) + "".join(v.rjust(width + 1) for v in variants)]
    for i, n in enumerate(names):
        lines.append(n.ljust(18) + "".join(
            (f"{100 * means[i, j]:.1f} ({100 * worst[i, j]:.0f})" if not np.isnan(
                means[i, j]) else "-").rjust(width + 1) for j in range(len(variants))))
    lines.append("mean rank".ljust(18) + "".join(
        f"{r:.2f}".rjust(width + 1) for r in ranks.mean(axis=0)) if len(ranks) else "")
    lines.append("mean score".ljust(18) + "".join(
        f"{100 * m:.2f}".rjust(width + 1) for m in means[complete].mean(axis=0)))
    lines.append("mean fit s".ljust(18) + "".join(
        f"{s:.1f}".rjust(width + 1) for s in seconds))
    lines.append("(mean over seeds, worst seed in brackets, in %; regression: "
                 "100 * (1 - RMSE / sd))")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["defaults"],
                        help="name:param=value,... (default: the defaults)")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), metavar="NAME")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cuts", type=int, default=1,
                        help="cuts of each training split (validation), each its own seed")
    parser.add_argument("--holdout", type=float, default=0.3,
                        help="share of the training split held out (validation)")
    parser.add_argument("--evaluate", choices=["validation", "test"], default="validation")
    parser.add_argument("--out", metavar="FILE")
    parser.add_argument("--from-json", nargs="+", metavar="FILE")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.from_json:
        results = []
        for path in args.from_json:
            with open(path) as f:
                results.extend(json.load(f)["results"])
        print(table(results))
        return 0
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores; {args.threads} thread(s); "
          f"evaluate on {args.evaluate}", flush=True)
    numba.set_num_threads(args.threads)
    warm_up(args.threads)
    variants = [parse_variant(v) for v in args.variants]
    names = args.datasets or list(DATASETS)

    def log(text):
        print(text, flush=True)

    def save(results):
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"cpu": cpu_model(), "threads": args.threads,
                           "holdout": args.holdout, "evaluate": args.evaluate,
                           "results": results}, f, indent=1)

    results = run(names, variants, list(range(args.seeds)), args.evaluate, args.holdout,
                  log, save, cuts=args.cuts)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
