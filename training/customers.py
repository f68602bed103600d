"""Customer models: behaviour segments, next-quarter lateness (``p_late_next``), grades, limits, warnings.

Two fitted parts travel together as one registered model, ``likvid-segmentation``:

- ``CustomerRiskModel``: LightGBM with a cross-entropy objective on customer snapshots, predicting
  the share of a customer's invoices due in the next quarter that will be paid late;
- ``CustomerSegmentation``: KMeans on scaled behaviour features of established customers, the number
  of clusters chosen by silhouette, each cluster named from its profile; customers with too little
  history are "new".

``customer_risk`` turns them, the policy's grade bands and limit months and the early warnings of
``features.customers`` into the contract's ``customers`` rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import lightgbm as lgb
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.metrics import silhouette_score  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from features.asof import as_of, last_known_date  # noqa: E402
from features.contract import Credit, Cust, Fx, Inv, Ord, Pay  # noqa: E402
from features.customers import (  # noqa: E402
    CUSTOMER_FEATURES,
    CustomerFeatureConfig,
    WarningConfig,
    customer_features,
    decided_invoices,
    early_warnings,
    late_share_in,
    late_share_next,
)
from features.invoices import LedgerPass, by_date, ledger_pass, pass_at  # noqa: E402
from features.load import Company  # noqa: E402
from features.policy import Grades, Policy  # noqa: E402
from training import metrics, tracking  # noqa: E402

CUSTOMER_COLUMNS = ["customer_id", "segment", "credit_grade", "p_late_next", "recommended_credit_limit",
                    "open_amount", "overdue_amount", "dso_days", "trend", "warning",
                    "customer_name"]  # beside the contract's columns: who the id is ("" when no name is given)
HEADROOM = "headroom"
NEW = "new"
SEGMENT_FEATURES = ["late_share_365", "mean_delay_365", "delay_std_365", "delay_trend", "monthly_invoiced",
                    "dispute_rate", "order_trend"]
_LOG_SEGMENT = [SEGMENT_FEATURES.index(c) for c in ("delay_std_365", "monthly_invoiced")]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class CustomerConfig:
    """Settings of the customer models."""

    horizon_days: int = 91  # "next quarter": invoices due in the 91 days after the as-of date
    every_days: int = 28  # spacing of training snapshots
    warmup_days: int = 120  # history needed before the first snapshot
    holdout_days: int = 91  # evaluation: fit at as-of - 91 days, judge the quarter after
    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 7
    min_child_samples: int = 40
    k_range: tuple[int, ...] = (2, 3, 4, 5, 6)
    new_days: int = 180  # tenure below this, or fewer decided invoices than min_decided, is "new"
    min_decided: int = 6
    cap_at_credit_limit: bool = True  # a recommended limit never exceeds the limit the data already sets
    seed: int = 0

    def params(self) -> dict:
        return asdict(self)


# --- next-quarter lateness -------------------------------------------------------------------------


class CustomerRiskModel:
    """LightGBM on customer features; the target is a share (cross-entropy objective), weighted by the
    number of invoices it is measured on, so the prediction is the expected late share."""

    def __init__(self, config: CustomerConfig = CustomerConfig()):
        self.config = config

    def fit(self, x: pd.DataFrame, y: np.ndarray, weight: np.ndarray | None = None) -> CustomerRiskModel:
        c = self.config
        self.features_ = list(CUSTOMER_FEATURES)
        self.booster_ = lgb.LGBMRegressor(
            objective="cross_entropy", n_estimators=c.n_estimators, learning_rate=c.learning_rate,
            num_leaves=c.num_leaves, min_child_samples=min(c.min_child_samples, max(len(x) // 10, 5)),
            subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=c.seed, verbose=-1,
            n_jobs=1,  # with 2 threads on a busy 2-core machine one fit took 80x longer (37 s against 0.46 s)
        ).fit(x[self.features_], np.asarray(y, float), sample_weight=weight)
        return self

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        """Probability that an invoice of the customer due in the next quarter is paid late."""
        return np.clip(self.booster_.predict(x[self.features_]), 0.0, 1.0)


def build_customer_risk(config: CustomerConfig = CustomerConfig()) -> CustomerRiskModel:
    return CustomerRiskModel(config)


def customer_examples(company: Company, at: pd.Timestamp, cfg: CustomerConfig = CustomerConfig(),
                      features: CustomerFeatureConfig = CustomerFeatureConfig(),
                      workers: int | None = None, known: dict | None = None) -> pd.DataFrame:
    """Customer snapshots whose next quarter is over by ``at``, labelled with its late share as known at
    ``at`` (``late_share_next``, ``n`` invoices); customers with no invoice due in it are left out. Built by
    ``workers`` processes (default: one per core; the rows do not depend on it).

    ``known`` maps dates to the company's customer features at them, from an earlier call for the same company
    and settings (the training origin, before the refit on everything known): a date's features depend on
    the facts known at that date alone, so they are taken from it, and the dates it lacks are built and added
    to it; only the labels are made anew, as known at ``at``. The rows are the same as without it (a test)."""
    # Only the tables the customer features read (the ledger's too: open amounts, currencies), seen as at ``at`` once.
    read = (Cust.TABLE, Inv.TABLE, Ord.TABLE, Pay.TABLE, Credit.TABLE, Fx.TABLE)
    view = as_of(Company({t: company[t] for t in read if company.has(t)}, company.supplied, company.base_currency), at)
    hist = decided_invoices(view, at, features.grace_days)
    first_issue = view[Inv.TABLE][Inv.ISSUE].min()
    last = at - pd.Timedelta(days=cfg.horizon_days)
    start = first_issue + pd.Timedelta(days=cfg.warmup_days)
    if pd.isna(first_issue) or start > last:
        raise ValueError(f"not enough history before {at:%Y-%m-%d} to train the customer model "
                         f"(need {cfg.warmup_days + cfg.horizon_days} days of invoices)")
    dates = pd.date_range(end=last, start=start, freq=f"{cfg.every_days}D")
    known = {} if known is None else known
    new = [d for d in dates if d not in known]
    if new:
        passed = pass_at(company, at)  # the ledger sorted once, looked up at each date
        known.update(zip(new, by_date(lambda d: customer_features(view, d, features, passed), new, workers)))
    frames = [known[d].join(late_share_in(hist, d, cfg.horizon_days), how="inner").assign(snapshot=d).reset_index()
              for d in dates]
    return pd.concat(frames, ignore_index=True)


# --- segments --------------------------------------------------------------------------------------


def _log_columns(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=float, copy=True)
    x[:, _LOG_SEGMENT] = np.log1p(np.clip(x[:, _LOG_SEGMENT], 0, None))
    return x


def _scaler() -> Pipeline:
    return make_pipeline(FunctionTransformer(_log_columns), SimpleImputer(strategy="median"), StandardScaler())


def _name(profile: pd.Series, book: pd.Series) -> str:
    """A credit controller's name for a cluster, from its median behaviour against the whole book's."""
    if profile["delay_trend"] >= 5.0 and profile["late_share_365"] > book["late_share_365"]:
        return "deteriorating"
    if profile["delay_std_365"] >= 1.5 * book["delay_std_365"]:
        return "erratic"
    if profile["late_share_365"] < 0.25:
        return "prompt payers"
    if profile["late_share_365"] >= 0.5:
        return "slow but steady" if profile["delay_std_365"] <= book["delay_std_365"] else "late payers"
    return "mostly on time"


class CustomerSegmentation:
    """KMeans on scaled behaviour features, k chosen by silhouette, clusters named from their profiles."""

    def __init__(self, config: CustomerConfig = CustomerConfig()):
        self.config = config

    def is_new(self, x: pd.DataFrame) -> pd.Series:
        c = self.config
        return (x["tenure_days"].fillna(0) < c.new_days) | (x["n_decided"] < c.min_decided)

    def fit(self, x: pd.DataFrame) -> CustomerSegmentation:
        c = self.config
        known = x[~self.is_new(x)]
        if len(known) < 2 * max(min(c.k_range), 2):
            raise ValueError(f"too few established customers to form segments ({len(known)})")
        self.scaler_ = _scaler().fit(known[SEGMENT_FEATURES].to_numpy())
        z = self.scaler_.transform(known[SEGMENT_FEATURES].to_numpy())
        self.silhouette_ = {}
        fits = {}
        with threadpool_limits(1):  # a few hundred rows: threads only contend (5 s against 0.04 s a fit)
            for k in c.k_range:
                if k >= len(known):
                    break
                km = KMeans(n_clusters=k, n_init=10, random_state=c.seed).fit(z)
                self.silhouette_[k] = float(silhouette_score(z, km.labels_, random_state=c.seed))
                fits[k] = km
        self.k_ = max(self.silhouette_, key=self.silhouette_.get)
        self.kmeans_ = fits[self.k_]
        profiles = known[SEGMENT_FEATURES].groupby(self.kmeans_.labels_).median()
        book = known[SEGMENT_FEATURES].median()
        names = {i: _name(row, book) for i, row in profiles.iterrows()}
        volume = profiles["monthly_invoiced"]
        for name in set(names.values()):
            same = [i for i in names if names[i] == name]
            if len(same) > 1:  # tell apart clusters that read alike by their size
                for rank, i in enumerate(sorted(same, key=lambda i: -volume[i])):
                    size = "larger" if rank == 0 else "smaller" if rank == len(same) - 1 else "mid-size"
                    names[i] = f"{name}, {size} accounts"
                if len({names[i] for i in same}) < len(same):
                    for n_, i in enumerate(same, 1):
                        names[i] = f"{name} {n_}"
        self.names_ = [names[i] for i in range(self.k_)]
        return self

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        """The segment name of each customer row."""
        out = np.full(len(x), NEW, dtype=object)
        new = self.is_new(x).to_numpy()
        if (~new).any():
            with threadpool_limits(1):
                labels = self.kmeans_.predict(self.scaler_.transform(x.loc[~new, SEGMENT_FEATURES].to_numpy()))
            out[~new] = np.asarray(self.names_, dtype=object)[labels]
        return out


def build_segmentation(config: CustomerConfig = CustomerConfig()) -> CustomerSegmentation:
    return CustomerSegmentation(config)


def segment_profiles(x: pd.DataFrame, segments: np.ndarray) -> pd.DataFrame:
    """Per segment: how many customers and their median behaviour (the table a credit team reads)."""
    cols = ["late_share_365", "mean_delay_365", "delay_std_365", "delay_trend", "monthly_invoiced", "dispute_rate",
            "order_trend", "tenure_days", "dso_days"]
    prof = x[cols].groupby(pd.Series(segments, index=x.index, name="segment")).median()
    prof.insert(0, "customers", pd.Series(segments).value_counts())
    return prof.sort_values("late_share_365").round(3)


# --- the bundle --------------------------------------------------------------------------------------


class CustomerModels:
    """The fitted customer models that travel together: ``risk_`` and ``segmentation_``."""

    def __init__(self, risk: CustomerRiskModel, segmentation: CustomerSegmentation,
                 features: CustomerFeatureConfig = CustomerFeatureConfig(), warnings: WarningConfig = WarningConfig()):
        self.risk_, self.segmentation_ = risk, segmentation
        self.features, self.warnings = features, warnings

    def predict(self, x: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"segment": self.segmentation_.predict(x), "p_late_next": self.risk_.predict(x)},
                            index=x.index)


def fit_customer_models(company: Company, at: pd.Timestamp | str | None = None,
                        cfg: CustomerConfig = CustomerConfig(),
                        features: CustomerFeatureConfig = CustomerFeatureConfig()) -> CustomerModels:
    """Fit both parts on everything known at ``at`` (no MLflow): for notebooks and tests."""
    at = pd.Timestamp(at).normalize() if at is not None else last_known_date(company)
    ex = customer_examples(company, at, cfg, features)
    risk = build_customer_risk(cfg).fit(ex, ex["late_share_next"].to_numpy(), ex["n"].to_numpy())
    seg = build_segmentation(cfg).fit(customer_features(company, at, features))
    return CustomerModels(risk, seg, features)


# --- grades and limits -------------------------------------------------------------------------------


def recommended_limit(grade: pd.Series, monthly_invoiced: pd.Series, grades: Grades,
                      credit_limit: pd.Series | None = None, cap: bool = True) -> pd.Series:
    """Limit months of the grade x average monthly invoicing (C: 0, prepayment), rounded down to 100,
    and never above the limit the data already sets when ``cap``."""
    months = grade.map(grades.limit_months).astype(float)
    limit = np.floor(months * monthly_invoiced.fillna(0.0).clip(lower=0) / 100.0) * 100.0
    if cap and credit_limit is not None:
        limit = limit.where(credit_limit.isna(), np.minimum(limit, credit_limit))
    return limit


def risk_change(models: CustomerModels, company: Company, at: pd.Timestamp,
                now: pd.Series | None = None, passed: LedgerPass | None = None) -> pd.DataFrame:
    """Each customer's ``p_late_next`` at ``at`` and ``models.warnings.risk_days`` before it, from the same
    model and the features as known on each day (what an early warning reads as the model's change of view);
    ``passed``: ``ledger_pass(company)`` when the caller has it."""
    before = at - pd.Timedelta(days=models.warnings.risk_days)
    if now is None:
        now = models.predict(customer_features(company, at, models.features, passed))["p_late_next"]
    # The read commands' look-back day (``at`` their default as-of) is kept as their as-of is; a past as-of's is not.
    x = customer_features(company, before, models.features, passed, keep=at == last_known_date(company))
    # A customer with no decided invoice by then has no earlier view to change from.
    earlier = pd.Series(models.risk_.predict(x), index=x.index).where(x["n_decided"] > 0)
    return pd.DataFrame({"p_late_next": now, "p_late_before": earlier.reindex(now.index)})


def customer_risk(company: Company, as_of: str | pd.Timestamp | None = None, models: CustomerModels | None = None,
                  policy: Policy = Policy(), cfg: CustomerConfig = CustomerConfig(),
                  company_key: str | None = None) -> pd.DataFrame:
    """The contract's ``customers`` rows for every customer known at as-of (``company_key``'s champion models
    unless given, refused when they learned another grace than the policy's); ``headroom`` (credit limit
    less open amount) is added when the data has a credit_limit column."""
    at = pd.Timestamp(as_of).normalize() if as_of is not None else last_known_date(company)
    if models is None:
        if company_key is None:
            raise ValueError("customer_risk needs the models or the company key of their champion")
        models = load_customer_models(company_key, policy)
    passed = ledger_pass(company)  # both days' features look the ledger's sums up in it
    x = customer_features(company, at, models.features, passed)
    predicted = models.predict(x)
    warnings = early_warnings(company, at, models.warnings, grace_days=policy.grace_days,
                              promise_grace_days=policy.dunning.promise_grace_days,
                              risk=risk_change(models, company, at, predicted["p_late_next"], passed)
                              ).reindex(x.index)
    grade = predicted["p_late_next"].map(policy.grades.grade)
    has_limit = Cust.CREDIT_LIMIT in company.supplied.get(Cust.TABLE, frozenset())
    out = pd.DataFrame({
        "customer_id": x.index.to_numpy(),
        "segment": predicted["segment"].to_numpy(),
        "credit_grade": grade.to_numpy(),
        "p_late_next": predicted["p_late_next"].round(4).to_numpy(),
        "recommended_credit_limit": recommended_limit(grade, x["monthly_invoiced"], policy.grades,
                                                      x[Cust.CREDIT_LIMIT] if has_limit else None,
                                                      cfg.cap_at_credit_limit).to_numpy(),
        "open_amount": x["open_amount"].round(2).to_numpy(),
        "overdue_amount": x["overdue_amount"].round(2).to_numpy(),
        "dso_days": x["dso_days"].round(1).to_numpy(),
        "trend": warnings["trend"].fillna("stable").to_numpy(),
        "warning": warnings["warning"].fillna("").to_numpy(),
        "customer_name": company[Cust.TABLE].drop_duplicates(Cust.ID).set_index(Cust.ID)[Cust.NAME]
        .reindex(x.index).astype("string").fillna("").to_numpy(dtype=object),
    })
    if has_limit:
        out[HEADROOM] = (x[Cust.CREDIT_LIMIT] - x["open_amount"]).round(2).to_numpy()
    return out[CUSTOMER_COLUMNS + ([HEADROOM] if has_limit else [])]


# --- MLflow: the customer family -------------------------------------------------------------------


def customer_output(models: CustomerModels, x: pd.DataFrame) -> pd.DataFrame:
    """The customer pyfunc: customer feature rows in, segment and p_late_next out."""
    return models.predict(x).reset_index(drop=True)


def load_customer_models(company: str, policy: Policy | None = None) -> CustomerModels:
    """``company``'s champion customer models (checked against the policy's definition of late when given);
    ``LookupError`` saying to run `likvid train DATA` first when missing."""
    return tracking.load_champion(tracking.SEGMENTATION, company, policy).model


def _weighted_brier(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    return float(np.average((y - p) ** 2, weights=w))


def evaluate_risk(y: np.ndarray, w: np.ndarray, scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per scorer: invoice-weighted Brier score of the late share and Spearman rank correlation with it."""
    return pd.DataFrame({name: {"brier": _weighted_brier(y, p, w), "spearman": float(spearmanr(p, y).statistic),
                                "customers": float(len(y))} for name, p in scores.items()}).T


def _profile_plot(x: pd.DataFrame, segments: np.ndarray, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 5))
    for name in sorted(set(segments)):
        m = segments == name
        ax.scatter(x.loc[m, "mean_delay_365"], x.loc[m, "late_share_365"], s=14, label=f"{name} ({m.sum()})")
    ax.set_xlabel("mean days after due, last 365 days")
    ax.set_ylabel("late share, last 365 days")
    ax.set_title("Customer segments")
    ax.legend(fontsize=8)
    return metrics.save_figure(fig, path)


@dataclass(frozen=True)
class CustomerExamples:
    """What the customer models learn from at a date: labelled snapshots and the customers as they stand."""

    snapshots: pd.DataFrame
    current: pd.DataFrame


@dataclass(frozen=True)
class CustomerFamily:
    """The customer models (``likvid-segmentation``): next-quarter lateness against the recent and
    365-day late shares, and segments; the gate's figure is the invoice-weighted holdout Brier score."""

    config: CustomerConfig = CustomerConfig()
    features: CustomerFeatureConfig = CustomerFeatureConfig()
    warnings: WarningConfig = WarningConfig()
    name: str = tracking.SEGMENTATION
    rule: tracking.GateRule = tracking.GateRule("brier", lower_is_better=True, tolerance=1e-4)
    output = staticmethod(customer_output)
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def holdout_days(self) -> int:
        return self.config.holdout_days

    def settings(self) -> dict:
        return {"customers": self.config.params(), "features": asdict(self.features),
                "warnings": asdict(self.warnings)}

    def definition(self) -> dict:
        return {k: v for k, v in asdict(self.features).items() if k in tracking.DEFINITION}

    def with_settings(self, settings: dict) -> CustomerFamily:
        return CustomerFamily(tracking.rebuild(CustomerConfig, settings["customers"]),
                              tracking.rebuild(CustomerFeatureConfig, settings["features"]),
                              tracking.rebuild(WarningConfig, settings["warnings"]))

    def examples(self, company: Company, date: pd.Timestamp) -> CustomerExamples:
        # The customer features by date, shared by the origin's examples and the refit's (``customer_examples``).
        known = self.memo.setdefault((id(company), self.features), {})
        return CustomerExamples(customer_examples(company, date, self.config, self.features, known=known),
                                customer_features(company, date, self.features))

    def fit(self, examples: CustomerExamples) -> CustomerModels:
        snaps = examples.snapshots
        risk = build_customer_risk(self.config).fit(snaps, snaps["late_share_next"].to_numpy(), snaps["n"].to_numpy())
        seg = build_segmentation(self.config).fit(examples.current)
        return CustomerModels(risk, seg, self.features, self.warnings)

    def holdout(self, company: Company, origin: pd.Timestamp, at: pd.Timestamp) -> pd.DataFrame:
        holdout = customer_features(company, origin, self.features).join(
            late_share_next(company, origin, at, self.config.horizon_days, self.features.grace_days), how="inner")
        if len(holdout) < 3:
            raise ValueError(f"too few customers with invoices due after {origin:%Y-%m-%d} to evaluate the "
                             "customer model")
        return holdout

    def measure(self, models: CustomerModels, holdout: pd.DataFrame) -> float:
        return _weighted_brier(holdout["late_share_next"].to_numpy(), models.risk_.predict(holdout),
                               holdout["n"].to_numpy())

    def evaluate(self, models: CustomerModels, examples: CustomerExamples, holdout: pd.DataFrame,
                 out: Path) -> tracking.Evaluation:
        y, w = holdout["late_share_next"].to_numpy(), holdout["n"].to_numpy()
        table = evaluate_risk(y, w, {"lightgbm": models.risk_.predict(holdout),
                                     "recent_late_share": holdout["late_share_weighted"].to_numpy(),
                                     "late_share_365": holdout["late_share_365"].to_numpy()})
        seg, current = models.segmentation_, examples.current
        segments = seg.predict(current)
        segment_profiles(current, segments).to_csv(out / "segment_profiles.csv")
        table.to_csv(out / "p_late_next_vs_baselines.csv")
        _profile_plot(current, segments, out / "segments.png")
        params = {"rows.train": len(examples.snapshots), "rows.holdout": len(holdout), "customers": len(current),
                  "segments.k": seg.k_, "segments.criterion": "silhouette"}
        extra = {**{f"silhouette_k{k}": s for k, s in seg.silhouette_.items()},
                 "silhouette_chosen": seg.silhouette_[seg.k_]}
        files = ("segment_profiles.csv", "p_late_next_vs_baselines.csv", "segments.png")
        return tracking.Evaluation(table, float(table.loc["lightgbm", "brier"]), params, [out / f for f in files],
                                   extra)

    def input_example(self, models: CustomerModels, company: Company, at: pd.Timestamp) -> pd.DataFrame:
        return customer_features(company, at, self.features)[CUSTOMER_FEATURES].head(5)


def features_for(policy: Policy, **settings) -> CustomerFeatureConfig:
    """The customer features with the policy's definition of late (the ``tracking.DEFINITION`` fields it has)."""
    names = {f.name for f in fields(CustomerFeatureConfig)}
    return CustomerFeatureConfig(**{k: v for k, v in tracking.definition_of(policy).items() if k in names}, **settings)


def train_segmentation(company: Company, data: str, as_of: str | pd.Timestamp | None = None,
                       progress: Progress = lambda _: None, cfg: CustomerConfig = CustomerConfig(),
                       warnings: WarningConfig = WarningConfig(),
                       policy: Policy = Policy()) -> tuple[tracking.GateDecision, str]:
    """The customer family alone through ``tracking.run_recipe`` for the company of ``data``, under its
    training lock: (gate decision, registered version)."""
    at = pd.Timestamp(as_of).normalize() if as_of is not None else last_known_date(company)
    key = policy.company_key(data)
    family = CustomerFamily(cfg, features_for(policy), warnings)
    with tracking.company_lock(key, say=progress):
        result = tracking.run_recipe(family, company, key, data, at, progress,
                                     {"rows.invoices": len(company[Inv.TABLE])})
    return result.decision, result.version

def truth_check(rows: pd.DataFrame, truth_folder: str | Path, at: str | pd.Timestamp,
                cfg: CustomerConfig = CustomerConfig()) -> dict[str, object]:
    """The issue's figures for ``customers`` rows of a synthetic company, against the generator's ``truth/``:
    Spearman of ``p_late_next`` with the true lateness of the next quarter (mean true probability of the
    invoices due in it), true lateness by grade, and warnings among customers that worsened 30-240 days
    before ``at`` and among those that never did."""
    at, folder = pd.Timestamp(at).normalize(), Path(truth_folder)
    inv = pd.read_csv(folder / f"{Inv.TABLE}.csv", dtype={Inv.ID: str, Inv.CUSTOMER: str}, parse_dates=[Inv.DUE])
    true_inv = pd.read_csv(folder / "truth" / "invoices.csv", dtype={Inv.ID: str})
    facts = pd.read_csv(folder / "truth" / "customers.csv", dtype={Cust.ID: str},
                        parse_dates=["deteriorates_from"]).set_index(Cust.ID)
    j = inv.merge(true_inv, on=Inv.ID)
    window = j[(j[Inv.DUE] > at) & (j[Inv.DUE] <= at + pd.Timedelta(days=cfg.horizon_days))]
    true_next = window.groupby(Inv.CUSTOMER)["p_late_true"].mean()
    r = rows.set_index("customer_id")
    both = r.join(true_next.rename("true"), how="inner")
    age = (at - facts["deteriorates_from"].reindex(r.index)).dt.days
    worsened, never = (age >= 30) & (age <= 240), facts["deteriorates_from"].reindex(r.index).isna()
    warned = r["warning"].fillna("") != ""
    return {
        "customers_scored": int(len(both)),
        "spearman": float(spearmanr(both["p_late_next"], both["true"]).statistic),
        "true_lateness_by_grade": both.groupby("credit_grade")["true"].agg(["mean", "size"]).reindex(
            ["AAA", "AA", "A", "B", "C"]).round(3),
        "worsened_30_240": int(worsened.sum()), "warned_of_worsened": float(warned[worsened].mean()),
        "never_worsened": int(never.sum()), "warned_of_never": float(warned[never].mean()),
    }
