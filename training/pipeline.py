"""Train, evaluate, log and promote the late-payment and payment-timing models; score open invoices."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from features.asof import last_known_date  # noqa: E402
from features.contract import Inv  # noqa: E402
from features.customers import WarningConfig  # noqa: E402
from features.invoices import DAYS_OVERDUE, FEATURES, OPEN_AMOUNT, FeatureConfig, invoice_features  # noqa: E402
from features.load import Company  # noqa: E402
from training import metrics, tracking  # noqa: E402
from training.customers import CustomerConfig, train_segmentation  # noqa: E402
from training.examples import ExampleConfig, not_yet_due, split  # noqa: E402
from training.late_payment import (  # noqa: E402
    LatePaymentConfig,
    LatePaymentModel,
    build_late_payment,
    build_logistic,
    history_baseline,
    time_slices,
)
from training.payment_timing import (  # noqa: E402
    PaymentTimingConfig,
    PaymentTimingModel,
    average_delay_baseline,
    build_payment_timing,
)
from training.reasons import sentence, top_reasons  # noqa: E402

SCORE_COLUMNS = ["invoice_id", "customer_id", "amount_open", "due_date", "p_late", "expected_days_late",
                 "predicted_pay_date", "pay_date_p10", "pay_date_p90", "risk_band",
                 "reason_1", "reason_2", "reason_3"]
RISK_BANDS = ((0.25, "low"), (0.5, "medium"), (0.75, "high"), (1.01, "very high"))
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainConfig:
    examples: ExampleConfig = field(default_factory=ExampleConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    late: LatePaymentConfig = field(default_factory=LatePaymentConfig)
    timing: PaymentTimingConfig = field(default_factory=PaymentTimingConfig)
    customers: CustomerConfig = field(default_factory=CustomerConfig)
    warnings: WarningConfig = field(default_factory=WarningConfig)


@dataclass
class TrainResult:
    as_of: pd.Timestamp
    origin: pd.Timestamp
    late_metrics: pd.DataFrame  # rows: model, columns: metric
    timing_metrics: pd.DataFrame
    decisions: dict[str, tracking.GateDecision]
    versions: dict[str, str]
    late_model: LatePaymentModel
    timing_model: PaymentTimingModel
    holdout: pd.DataFrame


def _segments(frame: pd.DataFrame) -> dict[str, pd.Series]:
    return {
        "terms": frame["terms_days"].astype(int).astype(str) + " days",
        "history": pd.Series(np.where(frame["n_settled"] < 10, "new (<10 settled)", "established"), index=frame.index),
        "delivery": frame["paper"].map({1.0: "paper", 0.0: "electronic"}).fillna("unknown"),
        "disputed": frame["disputed"].map({1.0: "disputed", 0.0: "not disputed"}),
        "amount": pd.qcut(frame["amount"], 3, labels=["small", "medium", "large"], duplicates="drop").astype(str),
    }


def _shap_plot(model: LatePaymentModel, x: pd.DataFrame, path: Path) -> Path:
    import shap

    sample = x[model.features_].sample(min(len(x), 2000), random_state=0)
    values = shap.TreeExplainer(model.booster_.booster_).shap_values(sample)
    values = values[1] if isinstance(values, list) else values
    shap.summary_plot(values, sample, show=False, max_display=15)
    plt.title("What drives the late-payment score (SHAP)")
    plt.tight_layout()
    plt.savefig(path, dpi=110)
    plt.close("all")
    return path


def _train_late_payment(train: pd.DataFrame, holdout: pd.DataFrame, cfg: TrainConfig, common: dict,
                        out: Path) -> tuple[LatePaymentModel, pd.DataFrame, tracking.GateDecision, str]:
    tr, ho = not_yet_due(train), not_yet_due(holdout)
    if tr["late"].nunique() < 2 or len(ho) == 0:
        raise ValueError("too few decided invoices to train the late-payment model "
                         f"({len(tr)} training, {len(ho)} holdout rows)")
    fit, cal = time_slices(tr, cfg.late.calibration_share)
    y_ho = ho["late"].to_numpy()
    with mlflow.start_run(run_name="late-payment") as run:
        model = build_late_payment(cfg.late).fit(fit, fit["late"].to_numpy(), cal, cal["late"].to_numpy())
        logistic = build_logistic().fit(tr[FEATURES], tr["late"].to_numpy())
        scores = {"lightgbm": model.predict_proba(ho), "customer_late_share": history_baseline(ho),
                  "logistic_regression": logistic.predict_proba(ho[FEATURES])[:, 1]}
        table = pd.DataFrame({name: metrics.classification(y_ho, p) for name, p in scores.items()}).T
        mlflow.log_params({**common, **{f"model.{k}": v for k, v in cfg.late.params().items()},
                           "rows.fit": len(fit), "rows.calibration": len(cal), "rows.holdout": len(ho),
                           "model.shape_chosen": "trees={}, learning_rate={}, leaves={}, min_rows={}".format(
                               *model.shape_)})
        for name, row in table.iterrows():
            mlflow.log_metrics({f"{k}_{name}" if name != "lightgbm" else k: float(v) for k, v in row.items()})
        scored = ho.assign(**{f"p_{k}": v for k, v in scores.items()})
        seg = metrics.by_segment(scored, "late", {k: f"p_{k}" for k in scores}, _segments(ho))
        seg.to_csv(out / "metrics_by_segment.csv", index=False)
        table.to_csv(out / "metrics_vs_baselines.csv")
        metrics.reliability_plot(y_ho, scores, str(out / "reliability.png"))
        _shap_plot(model, ho, out / "shap_summary.png")
        for f in ("metrics_by_segment.csv", "metrics_vs_baselines.csv", "reliability.png", "shap_summary.png"):
            mlflow.log_artifact(str(out / f))
        champion = tracking.champion_or_none(tracking.LATE_PAYMENT)
        champion_brier = (metrics.classification(y_ho, champion[0].predict_proba(ho))["brier"]
                          if champion else None)
        decision = tracking.gate("brier", float(table.loc["lightgbm", "brier"]), champion_brier, tolerance=1e-4)
        info = tracking.log_model(model, tracking.LATE_PAYMENT, ho[FEATURES].head(5))
        tracking.apply_gate(tracking.LATE_PAYMENT, info, decision)
        return model, table, decision, str(info.registered_model_version)


def _train_timing(train: pd.DataFrame, holdout: pd.DataFrame, cfg: TrainConfig, common: dict,
                  out: Path) -> tuple[PaymentTimingModel, pd.DataFrame, tracking.GateDecision, str]:
    settled = holdout[~holdout["censored"]]
    if len(settled) == 0:
        raise ValueError("no holdout invoice was paid, so payment timing cannot be evaluated")
    with mlflow.start_run(run_name="payment-timing"):
        model = build_payment_timing(cfg.timing).fit(train, train["delay"].to_numpy(), train["censored"].to_numpy())
        q = model.quantiles(settled)
        q = np.where(np.isinf(q), cfg.timing.max_delay_days, q)
        base = average_delay_baseline(settled)
        actual = settled["delay"].to_numpy()
        table = pd.DataFrame({"payment_timing": metrics.timing(actual, q[:, 0], q[:, 1], q[:, 2]),
                              "due_plus_average_delay": metrics.timing(actual, *base)}).T
        mlflow.log_params({**common, **{f"model.{k}": v for k, v in cfg.timing.params().items()},
                           "rows.train": len(train), "rows.train_censored": int(train["censored"].sum()),
                           "rows.holdout_settled": len(settled)})
        for name, row in table.iterrows():
            mlflow.log_metrics({f"{k}_{name}" if name != "payment_timing" else k: float(v) for k, v in row.items()})
        table.to_csv(out / "timing_vs_baseline.csv")
        metrics.pay_date_error_plot(actual, {"likvid": q[:, 1], "due + average delay": base[1]},
                                    str(out / "pay_date_error.png"))
        mlflow.log_artifact(str(out / "timing_vs_baseline.csv"))
        mlflow.log_artifact(str(out / "pay_date_error.png"))
        champion = tracking.champion_or_none(tracking.PAYMENT_TIMING)
        champion_mae = None
        if champion:
            cq = champion[0].quantiles(settled)
            champion_mae = metrics.timing(actual, *np.where(np.isinf(cq), cfg.timing.max_delay_days, cq).T)["mae_days"]
        decision = tracking.gate("mae_days", float(table.loc["payment_timing", "mae_days"]), champion_mae,
                                 tolerance=0.05)
        info = tracking.log_model(model, tracking.PAYMENT_TIMING, settled[FEATURES].head(5))
        tracking.apply_gate(tracking.PAYMENT_TIMING, info, decision)
        return model, table, decision, str(info.registered_model_version)


def train(company: Company, data: str, as_of_date: str | pd.Timestamp | None = None,
          cfg: TrainConfig = TrainConfig(), progress: Progress = lambda _: None) -> TrainResult:
    """Fit both models as of the origin 13 weeks before as-of, evaluate on the weeks after, log,
    register, and promote each to ``champion`` when it is not worse than the current one."""
    client = tracking.connect()
    # Under `mlflow run`, the project run lives in its own experiment; each model family logs to
    # its own experiment instead, tagged with the project run, whose headline metrics we fill in.
    project_run = os.environ.pop("MLFLOW_RUN_ID", None)
    progress("Building point-in-time features")
    at, origin, train_ex, holdout = split(company, as_of_date, cfg.examples, cfg.features)
    common = {"data": data, "as_of": f"{at:%Y-%m-%d}", "origin": f"{origin:%Y-%m-%d}",
              **({"project_run_id": project_run} if project_run else {}),
              "rows.invoices": len(company[Inv.TABLE]), "rows.customers": len(company["customers"])}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        mlflow.set_experiment(tracking.LATE_PAYMENT)
        progress("Training the late-payment model and its baselines")
        late, late_table, late_dec, late_v = _train_late_payment(train_ex, holdout, cfg, common, out)
        mlflow.set_experiment(tracking.PAYMENT_TIMING)
        progress("Training the payment-timing model")
        timing, timing_table, timing_dec, timing_v = _train_timing(train_ex, holdout, cfg, common, out)
    if project_run:
        for key, value in {"auc": late_table.loc["lightgbm", "auc"], "ece": late_table.loc["lightgbm", "ece"],
                           "brier": late_table.loc["lightgbm", "brier"],
                           "mae_days": timing_table.loc["payment_timing", "mae_days"]}.items():
            client.log_metric(project_run, key, float(value))
    result = TrainResult(at, origin, late_table, timing_table,
                         {tracking.LATE_PAYMENT: late_dec, tracking.PAYMENT_TIMING: timing_dec},
                         {tracking.LATE_PAYMENT: late_v, tracking.PAYMENT_TIMING: timing_v}, late, timing, holdout)
    seg_decision, seg_version = train_segmentation(company, data, at, progress, cfg.customers, cfg.warnings)
    result.decisions[tracking.SEGMENTATION], result.versions[tracking.SEGMENTATION] = seg_decision, seg_version
    from training.cash_forecast import CASH_FORECAST, train_cash_forecast  # last: it uses the timing champion

    progress("Training the cash forecast")
    decision, version = train_cash_forecast(company, data, at, progress)
    result.decisions[CASH_FORECAST], result.versions[CASH_FORECAST] = decision, version
    return result


def risk_band(p_late: np.ndarray, days_overdue: np.ndarray) -> np.ndarray:
    bands = np.select([p_late < limit for limit, _ in RISK_BANDS], [name for _, name in RISK_BANDS], "very high")
    return np.where(days_overdue > 0, "overdue", bands)


def score_features(x: pd.DataFrame, late: LatePaymentModel, timing: PaymentTimingModel) -> pd.DataFrame:
    """Contract ``score`` rows for feature rows (see ``invoice_features``)."""
    if x.empty:
        return pd.DataFrame(columns=SCORE_COLUMNS)
    p = late.predict_proba(x)
    q = timing.quantiles(x)
    due = x[Inv.DUE]

    def _date(days: np.ndarray) -> pd.Series:
        finite = np.isfinite(days)
        out = due + pd.to_timedelta(np.where(finite, days, 0), unit="D")
        return out.where(finite)

    contributions = late.contributions(x)
    overdue = (x[DAYS_OVERDUE] > 0).to_numpy()
    contributions.loc[overdue, "days_to_due"] = 0.0
    reasons = top_reasons(x, contributions)
    if overdue.any():  # for an invoice already late, the first fact is how late it is
        reasons.loc[overdue, "reason_3"] = reasons.loc[overdue, "reason_2"]
        reasons.loc[overdue, "reason_2"] = reasons.loc[overdue, "reason_1"]
        reasons.loc[overdue, "reason_1"] = [sentence("days_to_due", r, 1.0) for r in x[overdue].to_dict("records")]
    out = pd.DataFrame({
        "invoice_id": x[Inv.ID].to_numpy(),
        "customer_id": x[Inv.CUSTOMER].to_numpy(),
        "amount_open": x[OPEN_AMOUNT].to_numpy(),
        "due_date": due.to_numpy(),
        "p_late": np.round(p, 4),
        "expected_days_late": np.round(timing.expected_days_late(x), 1),
        "predicted_pay_date": _date(q[:, 1]).to_numpy(),
        "pay_date_p10": _date(q[:, 0]).to_numpy(),
        "pay_date_p90": _date(q[:, 2]).to_numpy(),
        "risk_band": risk_band(p, x[DAYS_OVERDUE].to_numpy()),
    })
    return pd.concat([out, reasons.reset_index(drop=True)], axis=1)[SCORE_COLUMNS]


def score(company: Company, as_of_date: str | pd.Timestamp | None = None,
          models: tuple[LatePaymentModel, PaymentTimingModel] | None = None,
          cfg: FeatureConfig = FeatureConfig()) -> pd.DataFrame:
    """Risk for every invoice open at as-of, with the champion models unless ``models`` is given."""
    at = pd.Timestamp(as_of_date).normalize() if as_of_date is not None else last_known_date(company)
    if models is None:
        models = (tracking.load_champion(tracking.LATE_PAYMENT)[0], tracking.load_champion(tracking.PAYMENT_TIMING)[0])
    x = invoice_features(company, at, cfg)
    scored = score_features(x, *models)
    return scored.sort_values(["p_late", "amount_open"], ascending=False, kind="stable").reset_index(drop=True)
