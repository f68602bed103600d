"""Metrics and plots for probabilities, payment dates and quantile forecasts."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score  # noqa: E402


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(total)


def classification(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    y, p = np.asarray(y, float), np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    two = len(np.unique(y)) == 2
    return {
        "auc": float(roc_auc_score(y, p)) if two else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if two else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": ece(y, p),
        "n": float(len(y)),
        "late_rate": float(y.mean()) if len(y) else float("nan"),
    }


def by_segment(frame: pd.DataFrame, y: str, scores: dict[str, str], segments: dict[str, pd.Series]) -> pd.DataFrame:
    """Classification metrics of each score within each segment (rows: segment, value, model)."""
    rows = []
    for seg_name, seg in segments.items():
        for value in seg.dropna().unique():
            part = frame[seg == value]
            if len(part) < 50 or part[y].nunique() < 2:
                continue
            for model, col in scores.items():
                rows.append({"segment": seg_name, "value": str(value), "model": model,
                             **classification(part[y].to_numpy(), part[col].to_numpy())})
    return pd.DataFrame(rows)


def save_figure(fig, path):
    """Lay out, write (PNG at 110 dpi) and close a figure; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def reliability_plot(y: np.ndarray, scores: dict[str, np.ndarray], path: str) -> str:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], "k:", label="perfectly calibrated")
    for name, p in scores.items():
        frac, mean = calibration_curve(y, p, n_bins=10, strategy="quantile")
        ax.plot(mean, frac, "o-", label=f"{name} (ECE {ece(y, p):.3f})")
    ax.set_xlabel("predicted probability of paying late")
    ax.set_ylabel("observed share paid late")
    ax.set_title("Reliability on the time-based holdout")
    ax.legend(loc="upper left", fontsize=8)
    return save_figure(fig, path)


def timing(actual_delay: np.ndarray, p10: np.ndarray, p50: np.ndarray, p90: np.ndarray) -> dict[str, float]:
    a = np.asarray(actual_delay, float)
    return {
        "mae_days": float(np.mean(np.abs(a - p50))),
        "coverage_p10_p90": float(np.mean((a >= p10) & (a <= p90))),
        "n": float(len(a)),
    }


def pay_date_error_plot(actual: np.ndarray, predictions: dict[str, np.ndarray], path: str) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 4))
    bins = np.arange(-40, 41, 2)
    for name, pred in predictions.items():
        err = np.clip(np.asarray(actual) - np.asarray(pred), -40, 40)
        ax.hist(err, bins=bins, alpha=0.5, label=f"{name} (MAE {np.mean(np.abs(actual - pred)):.1f} d)")
    ax.set_xlabel("actual minus predicted payment date (days)")
    ax.set_ylabel("invoices")
    ax.set_title("Pay-date error on the time-based holdout")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def pinball(actual: np.ndarray, quantiles: dict[float, np.ndarray]) -> float:
    """Mean pinball (quantile) loss over the rows and the levels given (level: predicted values); a point
    forecast given for every level scores half its mean absolute error. Over many levels it approaches half
    the CRPS."""
    a = np.asarray(actual, float)
    losses = []
    for level, predicted in quantiles.items():
        miss = a - np.asarray(predicted, float)
        losses.append(np.mean(np.maximum(level * miss, (level - 1) * miss)))
    return float(np.mean(losses)) if len(a) else float("nan")
