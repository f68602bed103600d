"""The two invoice-model families, late payment and payment timing: what ``tracking.run_recipe`` needs of
each (examples, fit, evaluation against baselines on the same rows, artifacts). They share their examples."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen before pyplot loads
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from features.invoices import FEATURES, FeatureConfig  # noqa: E402
from features.load import Company  # noqa: E402
from training import cores, metrics, tracking  # noqa: E402
from training.baselines import build_logistic  # noqa: E402
from training.examples import ISSUED_LATER, ExampleConfig, issued_later_rows, not_yet_due, with_rows  # noqa: E402
from training.examples import examples as snapshot_examples  # noqa: E402
from training.late_payment import (  # noqa: E402
    LatePaymentConfig,
    LatePaymentModel,
    build_late_payment,
    history_baseline,
    time_slices,
)
from training.payment_timing import (  # noqa: E402
    LOST,
    PAY_DATE_WITHIN_DAYS,
    RUN_NAMES,
    PaymentTimingConfig,
    PaymentTimingModel,
    average_delay_baseline,
    build_payment_timing,
    run_kind,
    write_off_labels,
)


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
    with warnings.catch_warnings():  # SHAP notes on every call that its LightGBM output format changed; handled below
        warnings.filterwarnings("ignore", message="LightGBM binary classifier with TreeExplainer", category=UserWarning)
        values = shap.TreeExplainer(model.trees).shap_values(sample)
    values = values[1] if isinstance(values, list) else values
    shap.summary_plot(values, sample, show=False, max_display=15, rng=np.random.default_rng(0))
    plt.title("What drives the late-payment score (SHAP)")
    plt.tight_layout()
    plt.savefig(path, dpi=110)
    plt.close("all")
    return path


# --- the invoice families: late payment and payment timing share their examples ----------------------


@dataclass(frozen=True)
class _InvoiceFamily:
    """What the two invoice-model families share: snapshots as known at a date, and the holdout after the
    origin (computed once per training and shared through ``memo``)."""

    examples_cfg: ExampleConfig = field(default_factory=ExampleConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def holdout_days(self) -> int:
        return self.examples_cfg.holdout_days

    def definition(self) -> dict:
        return {k: v for k, v in asdict(self.features).items() if k in tracking.DEFINITION}

    def examples(self, company: Company, date: pd.Timestamp) -> pd.DataFrame:
        key = ("examples", id(company), date, self.examples_cfg, self.features)
        if key not in self.memo:
            # The refit on everything known takes the origin's snapshots of the dates both share.
            earlier = [(k[2], v) for k, v in self.memo.items() if k[0] == "examples" and k[1] == id(company)
                       and k[3:] == key[3:] and k[2] < date]
            self.memo[key] = snapshot_examples(company, date, self.examples_cfg, self.features,
                                               earlier=max(earlier, key=lambda kv: kv[0])[1] if earlier else None)
        return self.memo[key]

    def holdout(self, company: Company, origin: pd.Timestamp, at: pd.Timestamp) -> pd.DataFrame:
        key = ("holdout", id(company), origin, at, self.examples_cfg, self.features)
        if key not in self.memo:
            c = self.examples_cfg
            self.memo[key] = snapshot_examples(company, at, ExampleConfig(c.every_days, 0, 10**6, c.holdout_days),
                                               self.features, start=origin)
        return self.memo[key]

    def input_example(self, model, company: Company, at: pd.Timestamp) -> pd.DataFrame:
        return self.examples(company, at)[FEATURES].head(5)


def late_payment_output(model: LatePaymentModel, x: pd.DataFrame) -> pd.DataFrame:
    """The late-payment pyfunc: invoice feature rows in, ``p_late`` out."""
    return pd.DataFrame({"p_late": model.predict_proba(x)})


@dataclass(frozen=True)
class LatePaymentFamily(_InvoiceFamily):
    """Late payment: LightGBM calibrated on a later slice, against the customer's late share and a
    logistic regression; the gate's figure is the holdout Brier score."""

    config: LatePaymentConfig = field(default_factory=LatePaymentConfig)
    name: str = tracking.LATE_PAYMENT
    rule: tracking.GateRule = tracking.GateRule("brier", lower_is_better=True, tolerance=1e-4)
    output = staticmethod(late_payment_output)

    def settings(self) -> dict:
        return {"late": self.config.params(), "examples": asdict(self.examples_cfg), "features": asdict(self.features)}

    def with_settings(self, settings: dict) -> LatePaymentFamily:
        return LatePaymentFamily(tracking.rebuild(ExampleConfig, settings["examples"]),
                                 tracking.rebuild(FeatureConfig, settings["features"]), self.memo,
                                 tracking.rebuild(LatePaymentConfig, settings["late"]))

    def fit(self, examples: pd.DataFrame) -> LatePaymentModel:
        tr = not_yet_due(examples)
        if tr["late"].nunique() < 2:
            raise ValueError(f"too few decided invoices to train the late-payment model ({len(tr)} rows)")
        fit, cal = time_slices(tr, self.config.calibration_share)
        return build_late_payment(self.config).fit(fit, fit["late"].to_numpy(), cal, cal["late"].to_numpy())

    def _rows(self, holdout: pd.DataFrame) -> pd.DataFrame:
        ho = not_yet_due(holdout)
        if len(ho) == 0 or ho["late"].nunique() < 2:
            raise ValueError(f"too few decided invoices in the holdout to evaluate the late-payment model ({len(ho)})")
        return ho

    def measure(self, model: LatePaymentModel, holdout: pd.DataFrame) -> float:
        ho = self._rows(holdout)
        return float(metrics.classification(ho["late"].to_numpy(), model.predict_proba(ho))["brier"])

    def evaluate(self, model: LatePaymentModel, examples: pd.DataFrame, holdout: pd.DataFrame,
                 out: Path) -> tracking.Evaluation:
        tr, ho = not_yet_due(examples), self._rows(holdout)
        y = ho["late"].to_numpy()
        # The logistic baseline is fitted on a second thread (its numpy work mostly without the GIL) while the
        # model's own scores and SHAP plot are made.
        logistic = cores.ahead(lambda: build_logistic().fit(tr[FEATURES], tr["late"].to_numpy()))
        own = model.predict_proba(ho)
        _shap_plot(model, ho, out / "shap_summary.png")
        scores = {"lightgbm": own, "customer_late_share": history_baseline(ho),
                  "logistic_regression": logistic.result().predict_proba(ho[FEATURES])[:, 1]}
        table = pd.DataFrame({name: metrics.classification(y, p) for name, p in scores.items()}).T
        scored = ho.assign(**{f"p_{k}": v for k, v in scores.items()})
        metrics.by_segment(scored, "late", {k: f"p_{k}" for k in scores}, _segments(ho)).to_csv(
            out / "metrics_by_segment.csv", index=False)
        table.to_csv(out / "metrics_vs_baselines.csv")
        metrics.reliability_plot(y, scores, str(out / "reliability.png"))
        fit, cal = time_slices(tr, self.config.calibration_share)
        params = {"rows.fit": len(fit), "rows.calibration": len(cal), "rows.holdout": len(ho),
                  "model.shape_chosen": "trees={}, learning_rate={}, leaves={}, min_rows={}".format(*model.shape_)}
        files = ("metrics_by_segment.csv", "metrics_vs_baselines.csv", "reliability.png", "shap_summary.png")
        return tracking.Evaluation(table, float(table.loc["lightgbm", "brier"]), params, [out / f for f in files])


def payment_timing_output(model: PaymentTimingModel, x: pd.DataFrame) -> pd.DataFrame:
    """The payment-timing pyfunc: invoice feature rows in, days after due (p10 / p50 / p90) out."""
    q = model.quantiles(x)
    return pd.DataFrame({"delay_p10": q[:, 0], "delay_p50": q[:, 1], "delay_p90": q[:, 2]})


@dataclass(frozen=True)
class PaymentTimingFamily(_InvoiceFamily):
    """Payment timing: censored pay-date distributions gathered on payment runs and recalibrated, against due + the
    customer's average delay; the gate's figure is the holdout MAE of the point prediction in days. The examples
    carry what was never collected (``LOST``), which ``never_paid`` learns from."""

    config: PaymentTimingConfig = field(default_factory=PaymentTimingConfig)
    name: str = tracking.PAYMENT_TIMING
    rule: tracking.GateRule = tracking.GateRule("mae_days", lower_is_better=True, tolerance=0.05)
    output = staticmethod(payment_timing_output)

    def settings(self) -> dict:
        return {"timing": self.config.params(), "examples": asdict(self.examples_cfg),
                "features": asdict(self.features)}

    def with_settings(self, settings: dict) -> PaymentTimingFamily:
        return PaymentTimingFamily(tracking.rebuild(ExampleConfig, settings["examples"]),
                                   tracking.rebuild(FeatureConfig, settings["features"]), self.memo,
                                   tracking.rebuild(PaymentTimingConfig, settings["timing"]))

    def examples(self, company: Company, date: pd.Timestamp) -> pd.DataFrame:
        ex = super().examples(company, date)
        ex = ex.assign(**{LOST: write_off_labels(company, date, ex, self.config.write_off_days)})
        key = ("issued later", id(company), date, self.examples_cfg, self.features, self.config.calibration_share)
        if key not in self.memo:  # fitted on, and asked again for the input example
            self.memo[key] = issued_later_rows(company, date, ex, self.config.calibration_share,
                                               self.examples_cfg.every_days, self.features)
        return with_rows(ex, self.memo[key])

    def fit(self, examples: pd.DataFrame) -> PaymentTimingModel:
        return build_payment_timing(self.config).fit(examples, examples["delay"].to_numpy(),
                                                     examples["censored"].to_numpy())

    def _settled(self, holdout: pd.DataFrame) -> pd.DataFrame:
        settled = holdout[~holdout["censored"]]
        if len(settled) == 0:
            raise ValueError("no holdout invoice was paid, so payment timing cannot be evaluated")
        return settled

    def _pay_days(self, model: PaymentTimingModel, settled: pd.DataFrame) -> np.ndarray:
        q = model.pay_days(settled)
        return np.where(np.isinf(q), self.config.max_delay_days, q)

    def measure(self, model: PaymentTimingModel, holdout: pd.DataFrame) -> float:
        settled = self._settled(holdout)
        return float(metrics.timing(settled["delay"].to_numpy(), *self._pay_days(model, settled).T)["mae_days"])

    def evaluate(self, model: PaymentTimingModel, examples: pd.DataFrame, holdout: pd.DataFrame,
                 out: Path) -> tracking.Evaluation:
        settled = self._settled(holdout)
        q, base, actual = self._pay_days(model, settled), average_delay_baseline(settled), settled["delay"].to_numpy()
        table = pd.DataFrame({"payment_timing": pay_date_figures(actual, q[:, 0], q[:, 1], q[:, 2]),
                              "due_plus_average_delay": pay_date_figures(actual, *base)}).T
        table.to_csv(out / "timing_vs_baseline.csv")
        segment = pd.Series(np.where(settled["days_to_due"] < 0, "overdue", "not_yet_due"), index=settled.index)
        segment = segment + "." + pd.Series(run_kind(settled), index=settled.index).map(RUN_NAMES)
        by_segment = {f"{name}.{key}": value for key, rows in settled.groupby(segment).indices.items()
                      for name, value in pay_date_figures(actual[rows], *q[rows].T).items()}
        pd.Series(by_segment).to_csv(out / "timing_by_segment.csv", header=["value"])
        metrics.pay_date_error_plot(actual, {"likvid": q[:, 1], "due + average delay": base[1]},
                                    str(out / "pay_date_error.png"))
        issued = examples[ISSUED_LATER].to_numpy(bool) if ISSUED_LATER in examples else np.zeros(len(examples), bool)
        train = examples[~issued]  # the snapshots; the rows of invoices issued later are counted apart
        params = {"rows.train": len(train), "rows.train_censored": int(train["censored"].sum()),
                  "rows.train_lost_known": int(train[LOST].notna().sum()) if LOST in train else 0,
                  "rows.train_issued_later": int(issued.sum()), "rows.holdout_settled": len(settled)}
        files = ("timing_vs_baseline.csv", "timing_by_segment.csv", "pay_date_error.png")
        return tracking.Evaluation(table, float(table.loc["payment_timing", "mae_days"]), params,
                                   [out / f for f in files], {f"segment.{k}": float(v) for k, v in by_segment.items()})



def pay_date_figures(actual: np.ndarray, p10: np.ndarray, point: np.ndarray, p90: np.ndarray) -> dict[str, float]:
    """MAE of the point in days, the share paid within ``PAY_DATE_WITHIN_DAYS`` of it, the band's coverage."""
    error = np.abs(np.asarray(actual, float) - point)
    within = float(np.mean(error <= PAY_DATE_WITHIN_DAYS)) if len(error) else np.nan
    return {**metrics.timing(actual, p10, point, p90), "within_3d": within}
