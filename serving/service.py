"""The likvid HTTP service on BentoML 1.4 (CONTRACT.md section 3).

It loads the champion models and the company's history once, at start-up, and answers with the
same rows as the command line. Settings come from the environment, which ``likvid serve`` fills in:
``LIKVID_DATA`` (data folder; default: the one the champion late-payment model was trained on),
``LIKVID_AS_OF`` (default: that training run's as-of), ``LIKVID_CONFIG`` (a likvid.yaml), and
``LIKVID_API_TOKEN`` (when set, every endpoint but the health checks needs ``Authorization: Bearer``).
``LIKVID_MODEL_SOURCE=bento`` takes the models from BentoML's model store (inside a built bento)
instead of the MLflow registry.
"""

from __future__ import annotations

import calendar
import hmac
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
import pandas as pd
from fastapi import FastAPI
from starlette.responses import JSONResponse

from features.asof import as_of, last_known_date
from features.contract import TABLES, Cust, Inv, dtype_of
from features.invoices import DAYS_OVERDUE, OPEN_AMOUNT, SNAPSHOT, FeatureConfig, History, history, invoice_features
from features.load import Company, ContractError, validate
from features.policy import Policy, PolicyError, load_policy
from serving.schemas import (
    AsOf,
    CustomerIds,
    CustomerRow,
    DiscountRow,
    ForecastRow,
    Invoices,
    KpiRow,
    ModelCard,
    ModelInfo,
    ScoreRow,
    ShocksIn,
    TopN,
    Weeks,
    WorklistRow,
)
from training import tracking
from training.cash_forecast import CASH_FORECAST
from training.pipeline import SCORE_COLUMNS, score_features

ENV_DATA, ENV_AS_OF, ENV_CONFIG = "LIKVID_DATA", "LIKVID_AS_OF", "LIKVID_CONFIG"
ENV_TOKEN, ENV_SOURCE = "LIKVID_API_TOKEN", "LIKVID_MODEL_SOURCE"
HEALTH_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
HEADLINE = ("auc", "pr_auc", "brier", "log_loss", "ece", "mae_days", "coverage_p10_p90")

EXAMPLE_INPUT = {
    "invoices": [{
        "invoice_id": "NEW-0001", "customer_id": "C0001", "issue_date": "2025-06-02", "due_date": "2025-07-02",
        "amount": 12500.0, "currency": "EUR", "delivery": "electronic",
    }],
}


class StartupError(RuntimeError):
    """The service cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class Settings:
    data: Path | None = None
    as_of: pd.Timestamp | None = None
    config: Path | None = None
    source: str = "registry"

    @classmethod
    def from_env(cls) -> Settings:
        as_of_ = os.environ.get(ENV_AS_OF) or None
        try:
            at = pd.Timestamp(as_of_).normalize() if as_of_ else None
        except ValueError:
            raise StartupError(f"{ENV_AS_OF} must be a date YYYY-MM-DD, not {as_of_!r}") from None
        data, config = os.environ.get(ENV_DATA), os.environ.get(ENV_CONFIG)
        return cls(Path(data) if data else None, at, Path(config) if config else None,
                   os.environ.get(ENV_SOURCE) or "registry")


@dataclass
class State:
    """Everything the service loaded at start-up."""

    company: Company
    at: pd.Timestamp
    data: str
    policy: Policy
    late: Any
    timing: Any
    cards: list[ModelCard]
    families: dict[str, Any] = field(default_factory=dict)  # optional model families, by module name
    customers: frozenset[str] = frozenset()
    open_invoices: int = 0
    known: History | None = None  # the invoice features' per-customer history at ``at``, built once
    fast: FastFeatures | None = None  # feature rows of request invoices from that history, without pandas work


def _card(name: str, version: Any) -> tuple[ModelCard, dict[str, str]]:
    """A registry version's model card, with its training run's params."""
    run_id = getattr(version, "run_id", None)
    params, metrics = {}, {}
    if run_id:
        run = tracking.connect().get_run(run_id)
        params, metrics = run.data.params, run.data.metrics
    card = ModelCard(name=name, version=str(version.version), run_id=run_id, trained_as_of=params.get("as_of"),
                     metrics={k: float(v) for k, v in metrics.items() if k in HEADLINE})
    return card, params


def _registry_models() -> tuple[Any, Any, list[ModelCard], dict[str, str]]:
    try:
        late, late_v = tracking.load_champion(tracking.LATE_PAYMENT)
        timing, timing_v = tracking.load_champion(tracking.PAYMENT_TIMING)
    except LookupError as e:
        raise StartupError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - an unreadable store must still say where and what
        raise StartupError(f"cannot load the champion models from {tracking.tracking_uri()}: {e}") from None
    late_card, params = _card(tracking.LATE_PAYMENT, late_v)
    timing_card, _ = _card(tracking.PAYMENT_TIMING, timing_v)
    return late, timing, [late_card, timing_card], params


BENTO_FAMILIES = (tracking.LATE_PAYMENT, tracking.PAYMENT_TIMING, tracking.SEGMENTATION, CASH_FORECAST)


def _bento_model(name: str) -> tuple[Any, dict]:
    """One champion imported by ``likvid build``: its pyfunc wrapper and its metadata."""
    import bentoml.mlflow

    try:
        model = bentoml.models.get(f"{name}:latest")
    except bentoml.exceptions.NotFound:
        raise StartupError(f"no model {name} in BentoML's model store; run `likvid build`") from None
    return bentoml.mlflow.load_model(model).unwrap_python_model(), dict(model.info.metadata)


def _bento_models() -> tuple[Any, Any, list[ModelCard], dict[str, str]]:
    """The late-payment and timing champions imported by ``likvid build`` (see ``import_champions``)."""
    loaded, cards = [], []
    for name in (tracking.LATE_PAYMENT, tracking.PAYMENT_TIMING):
        wrapper, meta = _bento_model(name)
        loaded.append(wrapper.model)
        cards.append(ModelCard(name=name, version=str(meta.get("version", "")), run_id=meta.get("run_id"),
                               trained_as_of=meta.get("as_of"), metrics=dict(meta.get("metrics", {}))))
        if name == tracking.LATE_PAYMENT:
            params = {"data": meta.get("data", ""), "as_of": meta.get("as_of", "")}
    return loaded[0], loaded[1], cards, params


def _families(source: str = "registry", timing: Any = None) -> dict[str, Any]:
    """The customer and cash-forecast champions: through their families' loaders from the registry, or
    from BentoML's model store in a bento (where the forecast pairs the cash model with ``timing``)."""
    from training import cash_forecast, customers

    if source == "bento":
        segmentation, seg_meta = _bento_model(tracking.SEGMENTATION)
        cash, cash_meta = _bento_model(cash_forecast.CASH_FORECAST)
        versions = {tracking.SEGMENTATION: str(seg_meta.get("version", "")),
                    cash_forecast.CASH_FORECAST: str(cash_meta.get("version", ""))}
        return {"customers": segmentation.model,
                "cash_forecast": cash_forecast.ForecastModels(timing, cash.model, versions)}
    try:
        return {"customers": customers.load_customer_models(), "cash_forecast": cash_forecast.load_forecast_models()}
    except LookupError as e:
        raise StartupError(str(e)) from None


def load_state(settings: Settings) -> State:
    """Load the champions, the data and the policy; ``StartupError`` says what is missing."""
    if settings.source not in ("registry", "bento"):
        raise StartupError(f"{ENV_SOURCE} must be 'registry' or 'bento', not {settings.source!r}")
    late, timing, cards, params = _registry_models() if settings.source == "registry" else _bento_models()
    data = settings.data or (Path(params["data"]) if params.get("data") else None)
    if data is None:
        raise StartupError(f"no data folder given and the champion's training run records none; set {ENV_DATA} "
                           "or pass --data")
    if not data.is_dir():
        raise StartupError(f"data folder {data} does not exist (pass --data DATA)")
    try:
        company = validate(data).company
    except ContractError as e:
        raise StartupError(f"the data in {data} cannot be used:\n  " + "\n  ".join(e.problems)) from None
    try:
        policy = load_policy(data, settings.config)
    except PolicyError as e:
        raise StartupError(str(e)) from None
    at = settings.as_of
    if at is None:
        at = pd.Timestamp(params["as_of"]) if params.get("as_of") else last_known_date(company)
    view = as_of(company, at)
    open_ = view[Inv.TABLE][Inv.PAID].isna()
    customers, known = frozenset(view[Cust.TABLE][Cust.ID]), history(company, at, FeatureConfig())
    return State(company=company, at=at, data=str(data), policy=policy, late=late, timing=timing, cards=cards,
                 families=_families(settings.source, timing), customers=customers, open_invoices=int(open_.sum()), known=known,
                 fast=FastFeatures.build(company, known, customers))


def absolute_tracking_uri(uri: str) -> str:
    """A relative SQLite store made absolute, so that server workers find it from any folder."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


def serve_environment(data: Path | None, at: pd.Timestamp | None, config: Path | None) -> dict[str, str]:
    """The environment ``likvid serve`` hands its server workers: absolute paths, the chosen as-of."""
    env = {"MLFLOW_TRACKING_URI": absolute_tracking_uri(tracking.tracking_uri())}
    env[ENV_DATA] = str(data.resolve()) if data is not None else ""
    env[ENV_AS_OF] = f"{at:%Y-%m-%d}" if at is not None else ""
    env[ENV_CONFIG] = str(config.resolve()) if config is not None else ""
    return env


def serve(host: str, port: int) -> None:
    """Run the BentoML server for ``Likvid`` (blocks until stopped); settings come from the environment."""
    Likvid.serve_http(host=host, port=port)


def example_invoice(state: State) -> dict:
    """A real invoice open at the service's as-of, as a request row (the largest, for the demo)."""
    inv = as_of(state.company, state.at)[Inv.TABLE]
    row = inv[inv[Inv.PAID].isna()].sort_values(Inv.AMOUNT, ascending=False, kind="stable").iloc[0]
    out = {c: row[c] for c in (Inv.ID, Inv.CUSTOMER, Inv.ISSUE, Inv.DUE, Inv.AMOUNT, Inv.DELIVERY)
           if pd.notna(row[c])}
    for c in (Inv.ISSUE, Inv.DUE):
        out[c] = f"{out[c]:%Y-%m-%d}"
    out[Inv.AMOUNT] = float(out[Inv.AMOUNT])
    return {k: str(v) if not isinstance(v, float) else v for k, v in out.items()}


def curl_examples(base_url: str, state: State) -> list[str]:
    """Ready-made calls against a running service; they send the token when one is set."""
    import json

    auth = f'-H "Authorization: Bearer ${ENV_TOKEN}"'
    post = f"curl -s {auth} -H 'Content-Type: application/json' {base_url}"
    invoice = example_invoice(state)
    calls = [f"curl -s {auth} {base_url}/model_info",
             f"{post}/score_invoices -d '{json.dumps({'invoices': [invoice]})}'",
             f"{post}/kpis -d '{{}}'"]
    calls.append(f"{post}/customer_risk -d '{json.dumps({'customer_ids': [invoice[Inv.CUSTOMER]]})}'")
    calls.append(f"{post}/forecast_cash -d '" + json.dumps(
        {"weeks": 13, "shocks": {"customer_delay_days": 10, "sales_change_pct": -10}}) + "'")
    calls.append(f"{post}/collection_worklist -d '{{\"top_n\": 10}}'")
    calls.append(f"{post}/discounts -d '{{}}'")
    return calls


def import_champions() -> list[str]:
    """Copy the registry's champions into BentoML's model store (``bentoml.mlflow.import_model``)."""
    import bentoml.mlflow

    client, tags = tracking.connect(), []
    for name in BENTO_FAMILIES:
        try:
            version = client.get_model_version_by_alias(name, tracking.CHAMPION)
        except Exception as e:  # noqa: BLE001 - MLflow raises its own exception for a missing alias
            raise LookupError(f"no '{tracking.CHAMPION}' version of model {name} in the registry at "
                              f"{tracking.tracking_uri()}; run `likvid train DATA` first") from e
        card, params = _card(name, version)
        model = bentoml.mlflow.import_model(
            name, model_uri=f"models:/{name}/{version.version}",
            labels={"registry_version": str(version.version)},
            metadata={"version": card.version, "run_id": card.run_id or "", "as_of": card.trained_as_of or "",
                      "data": params.get("data", ""), "metrics": card.metrics},
        )
        tags.append(str(model.tag))
    return tags


def build_bento(bentofile: Path = Path(__file__).resolve().parent.parent / "bentofile.yaml"):
    """``bentoml build`` with the project's bentofile.yaml; returns the bento."""
    import bentoml.bentos

    return bentoml.bentos.build_bentofile(str(bentofile), build_ctx=str(bentofile.parent))


class BearerAuth:
    """ASGI middleware: with a token configured, every path but the health checks needs it.

    The token is ``token`` or else ``LIKVID_API_TOKEN``, read per request, so that it can be set or
    rotated without rebuilding the app; it is compared in constant time.
    """

    def __init__(self, app, token: str | None = None):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        token = self.token if self.token is not None else os.environ.get(ENV_TOKEN)
        if not token or scope["type"] != "http" or scope["path"] in HEALTH_PATHS:
            return await self.app(scope, receive, send)
        given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        if hmac.compare_digest(given, f"Bearer {token}".encode()):
            return await self.app(scope, receive, send)
        response = JSONResponse({"error": "missing or wrong token: send the header Authorization: Bearer <token>"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return await response(scope, receive, send)


def bad_request(*problems: tuple[list, str]) -> JSONResponse:
    """A 400 shaped like BentoML's own validation errors: each problem names its field (``loc``)."""
    detail = [{"loc": loc, "msg": msg, "type": "value_error"} for loc, msg in problems]
    n = len(detail)
    return JSONResponse({"error": f"{n} validation error{'s' if n > 1 else ''}: "
                                  + "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in detail[:5]),
                         "detail": detail}, status_code=400)


def records(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    """Output rows as JSON-ready dicts: dates as dates, missing values as None."""
    values = []
    for col in columns:  # through numpy: pandas' frame-wide astype/where/to_dict costs ms per request
        a = frame[col].to_numpy()
        if a.dtype.kind == "M":
            values.append([None if v != v else v.item() for v in a.astype("datetime64[D]")])
        else:
            values.append([_plain(v) for v in a])
    return [dict(zip(columns, row)) for row in zip(*values)]


def _plain(v: Any) -> Any:
    """A numpy or pandas scalar as a plain Python value; NaN, NA and NaT as None."""
    if v is None or v is pd.NA or v is pd.NaT or v != v:
        return None
    return v.item() if hasattr(v, "item") else v


def invoice_frame(invoices: list) -> pd.DataFrame:
    """Request invoices as a typed ``invoices`` table (still open: no payment)."""
    rows = [inv.model_dump() for inv in invoices]
    return pd.DataFrame({c.name: pd.Series([r.get(c.name) for r in rows], dtype=object).astype(dtype_of(c))
                         for c in TABLES[Inv.TABLE].columns})


# Features that depend on the request invoice (or on the whole request batch); the rest depend only on the
# customer and are read from rows built once at start-up.
_PER_INVOICE = ("amount_vs_typical", "delay_std", "delay_margin", "expected_delay", "days_after_run_weekday",
                "days_after_run_monthday", "order_lead_days")


@dataclass(frozen=True)
class FastFeatures:
    """``invoice_features`` for request invoices without per-request pandas work: the customer-only values come
    from rows built once (by ``invoice_features`` itself), the per-invoice ones from plain arithmetic. The same
    values as ``invoice_features`` (tested); invoices linked to an order take ``invoice_features``."""

    known: History
    columns: list[str]  # invoice_features' output columns, in order
    row: dict[str, int]  # customer id -> row of ``values``
    values: np.ndarray  # customers x customer-only columns, float
    own: list[str]  # the customer-only columns, in ``values`` order
    extra: np.ndarray  # customers x (raw delay_std, mean_delay_undisputed, typical, run weekday, run monthday,
    #                    expected-delay base, order_lead_days)

    @classmethod
    def build(cls, company: Company, known: History, customers) -> FastFeatures:
        ids = sorted(customers)
        day = known.date
        dummy = pd.DataFrame({c.name: pd.Series([None] * len(ids), dtype=object).astype(dtype_of(c))
                              for c in TABLES[Inv.TABLE].columns})
        dummy[Inv.ID], dummy[Inv.CUSTOMER] = [f"_{i}" for i in range(len(ids))], ids
        dummy[Inv.ISSUE] = dummy[Inv.DUE] = day
        dummy[Inv.AMOUNT] = 1.0
        x = invoice_features(company, day, known.cfg, invoices=dummy, known=known)
        columns = list(x.columns)
        own = [c for c in columns[columns.index(OPEN_AMOUNT) + 1:] if c not in _PER_INVOICE and c not in _INVOICE]
        pc = known.per_customer.reindex(ids)
        extra = np.column_stack([
            pc["delay_std"].to_numpy(float), x["mean_delay_undisputed"].to_numpy(float),
            known.typical.reindex(ids).to_numpy(float), pc["run_weekday"].to_numpy(float),
            pc["run_monthday"].to_numpy(float), x["expected_delay"].to_numpy(float),  # dummy: undisputed, no paper
            x["order_lead_days"].to_numpy(float)])
        return cls(known, columns, {c: i for i, c in enumerate(ids)}, x[own].to_numpy(float), own, extra)

    def features(self, invoices: list) -> pd.DataFrame | None:
        """Feature rows of request invoices (``InvoiceIn``), or None when one is linked to an order."""
        if any(inv.order_id is not None for inv in invoices):
            return None
        at = self.known.date.date()
        idx = np.array([self.row[inv.customer_id] for inv in invoices])
        issue = [inv.issue_date for inv in invoices]
        due = [inv.due_date for inv in invoices]
        amount = np.array([inv.amount for inv in invoices], float)
        days_to_due = np.array([(d - at).days for d in due], float)
        month_end = np.array([calendar.monthrange(d.year, d.month)[1] - d.day < 5 for d in due], float)
        x = {Inv.ID: [inv.invoice_id for inv in invoices], Inv.CUSTOMER: [inv.customer_id for inv in invoices],
             Inv.ISSUE: np.array(issue, "datetime64[ns]"), Inv.DUE: np.array(due, "datetime64[ns]"),
             SNAPSHOT: self.known.date,
             OPEN_AMOUNT: amount, "amount": amount,
             "terms_days": np.array([(d - i).days for d, i in zip(due, issue)], float),
             "days_to_due": days_to_due, DAYS_OVERDUE: -days_to_due,
             "age_days": np.array([(at - i).days for i in issue], float),
             "paper": np.array([np.nan if inv.delivery is None else float(inv.delivery == "paper")
                                for inv in invoices]),
             "disputed": np.array([inv.dispute_date is not None and inv.dispute_date <= at for inv in invoices], float),
             "due_month_end": month_end,
             "due_quarter_end": (month_end.astype(bool) & np.isin([d.month for d in due], [3, 6, 9, 12])).astype(float),
             "due_month": np.array([d.month for d in due], float)}
        x.update(zip(self.own, self.values[idx].T))
        std, undisputed, typical, weekday, monthday, base, lead = self.extra[idx].T
        if np.isnan(std).any():  # as invoice_features: the request batch's median, else 5
            std = np.where(np.isnan(std), np.nanmedian(std) if (~np.isnan(std)).any() else 5.0, std)
        beta = self.known.delay_effects[0]
        day = np.array([d.day for d in due], float)
        prev_len = np.array([calendar.monthrange(*_month_before(d))[1] for d in due], float)
        x.update({"delay_std": std, "delay_margin": undisputed / (std + 1.0),
                  "expected_delay": base + beta[0] * x["disputed"] + beta[1] * np.nan_to_num(x["paper"], nan=0.0),
                  "amount_vs_typical": amount / np.where(np.isnan(typical), amount, typical),
                  "days_after_run_weekday": np.mod(np.array([d.weekday() for d in due], float) - weekday, 7),
                  "days_after_run_monthday": np.where(day >= monthday, day - monthday, day + prev_len - monthday),
                  "order_lead_days": lead})
        return pd.DataFrame({c: x[c] for c in self.columns})


_INVOICE = ("amount", "terms_days", "days_to_due", DAYS_OVERDUE, "age_days", "paper", "disputed", "due_month_end",
            "due_quarter_end", "due_month")


def _month_before(d: date) -> tuple[int, int]:
    return (d.year, d.month - 1) if d.month > 1 else (d.year - 1, 12)


def _first_problems(values: list, bad: set, loc: str, field_: str | None, msg: str) -> list[tuple[list, str]]:
    """The first 20 items in ``bad``, each located as ``[loc, index, field]``."""
    return [([loc, i] + ([field_] if field_ else []), msg.format(v)) for i, v in enumerate(values) if v in bad][:20]


app = FastAPI(title="likvid", description="Working-capital intelligence over HTTP.")


@bentoml.service(name="likvid", traffic={"timeout": 300}, workers=1)
@bentoml.asgi_app(app, path="/")
class Likvid:
    """Late-payment risk with reasons, customer risk and cash forecasts, from the champion models."""

    def __init__(self) -> None:
        self.state = load_state(Settings.from_env())

    @bentoml.api(route="/score_invoices")
    def score_invoices(self, invoices: Invoices) -> list[ScoreRow]:
        """Score invoices against their customers' history known to the service, with three reasons each."""
        s = self.state
        ids = [inv.invoice_id for inv in invoices]
        dupes = {i for i in ids if ids.count(i) > 1} if len(set(ids)) < len(ids) else set()
        customers = [inv.customer_id for inv in invoices]
        problems = _first_problems(customers, set(customers) - s.customers, "invoices", "customer_id",
                                   "unknown customer id {!r}: not in the served data's customers")
        problems += _first_problems(ids, dupes, "invoices", "invoice_id", "invoice_id {!r} appears more than once")
        problems += [(["invoices", i, "issue_date"], f"issue_date {inv.issue_date} is after the service's as-of "
                      f"date {s.at:%Y-%m-%d}, the history it scores against")
                     for i, inv in enumerate(invoices) if pd.Timestamp(inv.issue_date) > s.at][:20]
        if problems:
            return bad_request(*problems)
        # As `likvid score`: the default features the models were trained on, from the history built at start-up.
        x = s.fast.features(invoices) if s.fast is not None else None
        if x is None:
            x = invoice_features(s.company, s.at, FeatureConfig(), invoices=invoice_frame(invoices), known=s.known)
        return records(score_features(x, s.late, s.timing), SCORE_COLUMNS)

    @bentoml.api(route="/customer_risk")
    def customer_risk(self, customer_ids: CustomerIds) -> list[CustomerRow]:
        """Segment, credit grade, limit and warnings of each customer, the rows of ``likvid customers``."""
        from training import customers

        s = self.state
        problems = _first_problems(customer_ids, set(customer_ids) - s.customers, "customer_ids", None,
                                   "unknown customer id {!r}: not in the served data's customers")
        if problems:
            return bad_request(*problems)
        frame = customers.customer_risk(s.company, s.at, models=s.families["customers"], policy=s.policy)
        frame = frame.set_index(Cust.ID, drop=False).loc[list(dict.fromkeys(customer_ids))]
        return records(frame, list(frame.columns))

    @bentoml.api(route="/forecast_cash")
    def forecast_cash(self, as_of: AsOf = None, weeks: Weeks = 13, shocks: ShocksIn = ShocksIn()) -> list[ForecastRow]:
        """Weekly cash forecast (p10/p50/p90 inflows, outflows, balance) from as-of, under optional shocks."""
        from training import cash_forecast

        s = self.state
        at, problem = _request_as_of(as_of, s)
        if problem:
            return bad_request((["as_of"], problem))
        try:
            shock = cash_forecast.Shocks(**shocks.model_dump())
        except ValueError as e:
            return bad_request((["shocks", str(e).split(" ")[0]], str(e)))
        frame = cash_forecast.forecast(s.company, at, weeks=weeks, shocks=shock,
                                       models=s.families["cash_forecast"], policy=s.policy)
        return records(frame, cash_forecast.FORECAST_COLUMNS)

    @bentoml.api(route="/kpis")
    def kpis(self, as_of: AsOf = None) -> list[KpiRow]:
        """Working-capital figures (DSO, DPO, DIO, CCC, aging, overdue and bad-debt shares) at as-of."""
        from features.working_capital import KPI_COLUMNS, kpis

        s = self.state
        at, problem = _request_as_of(as_of, s)
        if problem:
            return bad_request((["as_of"], problem))
        return records(kpis(s.company, at, policy=s.policy), KPI_COLUMNS)

    @bentoml.api(route="/collection_worklist")
    def collection_worklist(self, top_n: TopN = 50, as_of: AsOf = None) -> list[WorklistRow]:
        """The open invoices to act on first, with the dunning step and why: the rows of ``likvid worklist``."""
        from training.collections import WORKLIST_COLUMNS, worklist

        s = self.state
        at, problem = _request_as_of(as_of, s)
        if problem:
            return bad_request((["as_of"], problem))
        frame = worklist(s.company, at, top_n, s.policy, models=(s.late, s.timing))
        return records(frame, WORKLIST_COLUMNS)

    @bentoml.api(route="/discounts")
    def discounts(self, as_of: AsOf = None) -> list[DiscountRow]:
        """Each open bill with early-payment terms: take the discount or not, and what it earns (``likvid
        discounts``)."""
        from training import cash_forecast
        from training.collections import DISCOUNT_COLUMNS, CollectionsConfig, discounts

        s = self.state
        at, problem = _request_as_of(as_of, s)
        if problem:
            return bad_request((["as_of"], problem))
        # The forecast the command asks for, from the cash-forecast models loaded at start-up.
        forecast = cash_forecast.forecast(s.company, at, weeks=CollectionsConfig().forecast_weeks,
                                          models=s.families["cash_forecast"], policy=s.policy)
        return records(discounts(s.company, at, s.policy, forecast=forecast), DISCOUNT_COLUMNS)

    @app.get("/model_info", response_model=ModelInfo, summary="The champion models and the served data")
    def model_info(self) -> ModelInfo:
        """Model names, registry versions, training as-of and headline holdout metrics."""
        s = self.state
        endpoints = ["/score_invoices", "/customer_risk", "/forecast_cash", "/kpis", "/collection_worklist",
                     "/discounts", "/model_info"]
        return ModelInfo(service_as_of=f"{s.at:%Y-%m-%d}", data=s.data, customers=len(s.customers),
                         open_invoices=s.open_invoices, endpoints=sorted(endpoints), models=s.cards)


def _request_as_of(value: date | None, s: State) -> tuple[pd.Timestamp, str | None]:
    """A request's as-of: a date no later than the service's (it knows nothing after it)."""
    if value is None:
        return s.at, None
    at = pd.Timestamp(value)
    first = s.company[Inv.TABLE][Inv.ISSUE].min()
    if at < first:
        return s.at, f"as_of {at:%Y-%m-%d} is before the data's first invoice ({first:%Y-%m-%d})"
    if at > s.at:
        return s.at, f"as_of {at:%Y-%m-%d} is after the service's as-of {s.at:%Y-%m-%d}; it knows nothing later"
    return at, None


Likvid.add_asgi_middleware(BearerAuth)
