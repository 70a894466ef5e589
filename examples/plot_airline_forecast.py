"""
Forecasting airline passengers with sktime
==========================================

The monthly totals of international airline passengers, 1949-1960 (Box and Jenkins),
ship with sktime. We hold out the last three years, forecast all 36 months from the end
of 1957 at once, and compare :class:`numlstm.sktime.LSTMForecaster` with three of
sktime's forecasters on the same split: the seasonal naive forecast (each month repeats
the same month of the last year), the Theta method and automatic exponential smoothing
(``AutoETS``).

The LSTM runs inside a sktime pipeline: a log transform (the seasonal swings grow with
the level) and differencing remove what a standardised network input should not carry.
Which differences to take and how to forecast several steps (one network output per
month ahead, or one step fed back 36 times) is chosen by sktime's
``ForecastingGridSearchCV`` with expanding windows *on the training years only*; the
test years are used once, at the end.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sktime.datasets import load_airline
from sktime.forecasting.compose import TransformedTargetForecaster
from sktime.forecasting.ets import AutoETS
from sktime.forecasting.model_selection import ForecastingGridSearchCV
from sktime.forecasting.naive import NaiveForecaster
from sktime.forecasting.theta import ThetaForecaster
from sktime.performance_metrics.forecasting import mean_absolute_percentage_error
from sktime.split import ExpandingWindowSplitter, temporal_train_test_split
from sktime.transformations.series.boxcox import LogTransformer
from sktime.transformations.series.difference import Differencer
from sklearn.exceptions import ConvergenceWarning

from numlstm.sktime import LSTMForecaster

warnings.filterwarnings("ignore", category=ConvergenceWarning)
warnings.filterwarnings("ignore", category=FutureWarning)  # sktime's announced defaults

y = load_airline()
y_train, y_test = temporal_train_test_split(y, test_size=36)
fh = np.arange(1, 37)


def lstm_pipeline(random_state=0):
    return TransformedTargetForecaster([
        ("log", LogTransformer()),
        ("diff", Differencer(lags=1)),
        ("lstm", LSTMForecaster(window_length=12, random_state=random_state)),
    ])


# %%
# Choosing the pipeline on the training years
# -------------------------------------------
# Three folds of expanding windows inside the training years, each forecasting the next
# twelve months; the score is the mean absolute percentage error (MAPE).
search = ForecastingGridSearchCV(
    lstm_pipeline(),
    cv=ExpandingWindowSplitter(initial_window=72, step_length=12, fh=np.arange(1, 13)),
    param_grid={"diff__lags": [1, [1, 12]],
                "lstm__strategy": ["direct", "recursive"]},
    scoring=mean_absolute_percentage_error)
search.fit(y_train, fh=np.arange(1, 13))
print("chosen on the training years:", search.best_params_)

# %%
# The test years
# --------------
# The chosen pipeline, refitted on all training years with five seeds, against the
# three baselines.
baselines = {
    "seasonal naive": NaiveForecaster(strategy="last", sp=12),
    "Theta": ThetaForecaster(sp=12),
    "AutoETS": AutoETS(auto=True, sp=12),
}
errors, forecasts = {}, {}
for name, forecaster in baselines.items():
    forecasts[name] = forecaster.fit(y_train, fh=fh).predict()
    errors[name] = mean_absolute_percentage_error(y_test, forecasts[name])

lstm_errors = []
for seed in range(5):
    model = lstm_pipeline(random_state=seed).set_params(**search.best_params_)
    prediction = model.fit(y_train, fh=fh).predict()
    lstm_errors.append(mean_absolute_percentage_error(y_test, prediction))
    if seed == 0:
        forecasts["LSTM (seed 0)"] = prediction

print(f"{'forecaster':<16} test MAPE")
for name, error in errors.items():
    print(f"{name:<16} {error:.3f}")
print(f"{'LSTM':<16} {np.mean(lstm_errors):.3f} mean of 5 seeds "
      f"(sd {np.std(lstm_errors):.3f}, worst {np.max(lstm_errors):.3f})")

# %%
# Forecasts against what happened
# -------------------------------
fig, ax = plt.subplots(figsize=(8, 4))
ax.plot(y_train.index.to_timestamp(), y_train.to_numpy(), color="0.3", label="training years")
ax.plot(y_test.index.to_timestamp(), y_test.to_numpy(), color="black", lw=2, label="actual")
for name, prediction in forecasts.items():
    ax.plot(prediction.index.to_timestamp(), prediction.to_numpy(), label=name)
ax.set_ylabel("passengers (thousands)")
ax.set_title("36 months ahead from December 1957")
ax.legend(loc="upper left", fontsize="small")
fig.tight_layout()
plt.show()
