"""What the HTTP service loads once, at start-up: its settings, the four champion models, the company's data,
its policy and the invoice history known at the service's as-of.

Settings come from the environment, which ``likvid serve`` fills in: ``LIKVID_DATA`` (data folder; default: the
one the champion late-payment model was trained on), ``LIKVID_AS_OF`` (default: that training run's as-of),
``LIKVID_CONFIG`` (a likvid.yaml) and ``LIKVID_MODEL_SOURCE`` (``registry``, the default, or ``bento``: the models
come from BentoML's model store inside a built bento, see ``serving.bento``).
"""

from __future__ import annotations

import os
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features import ledger
from features.asof import as_of, last_known_date
from features.contract import Cust, Inv
from features.invoices import FeatureConfig, History, history, invoice_features
from features.load import Company, ContractError, validate
from features.policy import Policy, PolicyError, load_policy
from serving.guard import MAX_CONNECTIONS
from serving.schemas import ModelCard
from training import tracking

ENV_DATA, ENV_AS_OF, ENV_CONFIG, ENV_SOURCE = "LIKVID_DATA", "LIKVID_AS_OF", "LIKVID_CONFIG", "LIKVID_MODEL_SOURCE"
ENV_MAPPING = "LIKVID_MAPPING"  # the data folder's mapping file (`likvid serve --mapping`)
ENV_WORKERS = "LIKVID_WORKERS"  # server worker processes (`likvid serve --workers`; default: the cores)
ENV_HEAVY_WORKERS = "LIKVID_HEAVY_WORKERS"  # the heavy answers' processes (`likvid serve --heavy-workers`; default 1)
ENV_MAX_CONNECTIONS = "LIKVID_MAX_CONNECTIONS"  # open connections per API worker (`likvid serve --max-connections`)
ENV_OMP_THREADS = "OMP_NUM_THREADS"  # OpenMP threads per server process (``serve_environment``: default 1)
ENV_RELOAD = "LIKVID_RELOAD_ON_PROMOTE"  # seconds between registry checks (`likvid serve --reload-on-promote`)
RELOAD_SECONDS = 30  # the default interval of those checks
SOURCES = ("registry", "bento")
# The headline holdout metrics of a training run: the product's own figures, not the baselines' beside them
# (the cash forecast logs ``{metric}_{target}_{method}``; its own method is ``likvid``).
HEADLINE = ("auc", "pr_auc", "brier", "log_loss", "ece", "mae_days", "coverage_p10_p90", "spearman",
            "silhouette_chosen")
OWN_METHOD = "_likvid"


class StartupError(RuntimeError):
    """The service cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class Settings:
    """Where the service takes its data, as-of, policy and models from."""

    data: Path | None = None
    as_of: pd.Timestamp | None = None
    config: Path | None = None
    source: str = "registry"
    mapping: Path | None = None

    @classmethod
    def from_env(cls) -> Settings:
        value = os.environ.get(ENV_AS_OF) or None
        try:
            at = pd.Timestamp(value).normalize() if value else None
        except ValueError:
            raise StartupError(f"{ENV_AS_OF} must be a date YYYY-MM-DD, not {value!r}") from None
        data, config = os.environ.get(ENV_DATA), os.environ.get(ENV_CONFIG)
        mapping = os.environ.get(ENV_MAPPING)
        return cls(Path(data) if data else None, at, Path(config) if config else None,
                   os.environ.get(ENV_SOURCE) or "registry", Path(mapping) if mapping else None)


@dataclass(frozen=True)
class Champions:
    """The four champion models the service answers with, and the cards ``/model_info`` shows."""

    late: Any  # training.late_payment.LatePaymentModel
    timing: Any  # training.payment_timing.PaymentTimingModel
    customers: Any  # training.customers.CustomerModels
    forecast: Any  # the cash forecast's ForecastModels (paired with ``timing``)
    cards: tuple[ModelCard, ...]  # in ``families()`` order


@dataclass(frozen=True)
class State:
    """Everything the service loaded at start-up; requests only read it."""

    company: Company
    at: pd.Timestamp
    data: str
    policy: Policy
    company_key: str
    models: Champions
    cfg: FeatureConfig  # the invoice features' settings, as `likvid score` computes them
    known: History  # the invoice features' per-customer history at ``at``, built once
    customers: frozenset[str]
    open_invoices: int
    # each request currency's rate at ``at`` (``known.rate``) once asked, for those that have one (``rates``)
    rate_memo: dict[str | None, float] = field(default_factory=dict, repr=False, compare=False)

    def rates(self, currencies: list[str | None]) -> np.ndarray:
        """``known.rate`` of request currencies, each code asked once while this state is served. The memo is keyed
        by the code as the ledger reads it (``ledger.codes``: trimmed, upper-cased), and a code without a rate (NaN)
        is not kept, so it holds only codes the data knows, however requests spell them."""
        currencies = ledger.codes(pd.Series(currencies, dtype="string")).to_numpy(dtype=object, na_value=None)
        missing = [c for c in dict.fromkeys(currencies) if c not in self.rate_memo]
        fresh = dict(zip(missing, self.known.rate(pd.Series(missing, dtype="string"), len(missing)))) if missing else {}
        self.rate_memo.update({c: r for c, r in fresh.items() if not np.isnan(r)})
        return np.array([self.rate_memo[c] if c in self.rate_memo else fresh[c] for c in currencies], float)


def workers() -> int | str:
    """The server's worker processes: ``LIKVID_WORKERS``, else one per core (BentoML's ``"cpu_count"``)."""
    value = os.environ.get(ENV_WORKERS) or ""
    if not value:
        return "cpu_count"
    if not value.isdigit() or int(value) < 1:
        raise StartupError(f"{ENV_WORKERS} must be a whole number of worker processes, 1 or more, not {value!r}")
    return int(value)


def heavy_workers() -> int:
    """The heavy service's processes (``serving.heavy``): ``LIKVID_HEAVY_WORKERS``, else 1."""
    value = os.environ.get(ENV_HEAVY_WORKERS) or "1"
    if not value.isdigit() or int(value) < 1:
        raise StartupError(f"{ENV_HEAVY_WORKERS} must be a whole number of processes, 1 or more, not {value!r}")
    return int(value)


def max_connections() -> int:
    """Open connections an API worker holds before it answers a request with a 503 (``LIKVID_MAX_CONNECTIONS``,
    else ``MAX_CONNECTIONS``)."""
    value = os.environ.get(ENV_MAX_CONNECTIONS) or str(MAX_CONNECTIONS)
    if not value.isdigit() or int(value) < 1:
        raise StartupError(f"{ENV_MAX_CONNECTIONS} must be a whole number of connections, 1 or more, not {value!r}")
    return int(value)


def reload_seconds() -> float | None:
    """How often a worker checks the registry for a newly promoted champion (``LIKVID_RELOAD_ON_PROMOTE``), or
    ``None``: it serves the champions it loaded until restarted."""
    value = os.environ.get(ENV_RELOAD) or ""
    try:
        seconds = float(value) if value else None
    except ValueError:
        raise StartupError(f"{ENV_RELOAD} must be a number of seconds, not {value!r}") from None
    if seconds is not None and seconds <= 0:
        raise StartupError(f"{ENV_RELOAD} must be a positive number of seconds, not {value!r}")
    return seconds


def registry_champions(company: str) -> dict[str, str]:
    """The version each family's ``champion`` alias points at in the registry now (a family without one is
    left out): what a running service compares with the versions it serves."""
    client, now = tracking.connect(), {}
    for family in families():
        try:
            now[family] = str(client.get_model_version_by_alias(tracking.model_name(family, company),
                                                                tracking.CHAMPION).version)
        except Exception:  # noqa: BLE001, S112 - MLflow raises its own exception for a missing alias
            continue
    return now


def moved(s: State, now: dict[str, str]) -> bool:
    """Whether the registry's champion of any family (``registry_champions``) differs from the one served."""
    return any(now.get(card.family, card.version) != card.version for card in s.models.cards)


def watch_registry(service: weakref.ref, seconds: float, check: str) -> None:
    """A process's reload thread: every ``seconds``, the service instance's method ``check``; it ends with the
    instance (an API worker's or a heavy process's)."""
    while True:
        time.sleep(seconds)
        if (instance := service()) is None:
            return
        getattr(instance, check)()
        del instance


def families() -> tuple[str, ...]:
    """The four champion families, in the order ``/model_info`` lists them."""
    return tracking.FAMILIES


def model_card(family: str, name: str, version: Any, run_id: str | None) -> tuple[ModelCard, dict[str, str]]:
    """A registered version's model card, with its training run's params."""
    params, metrics = {}, {}
    if run_id:
        run = tracking.connect().get_run(run_id)
        params, metrics = run.data.params, run.data.metrics
    card = ModelCard(family=family, name=name, version=str(version), run_id=run_id, trained_as_of=params.get("as_of"),
                     metrics={k: float(v) for k, v in metrics.items() if k in HEADLINE or k.endswith(OWN_METHOD)})
    return card, params


def trained_on(source: str = "registry") -> Path | None:
    """The data folder the late-payment champion was trained on, when the store holds one company's only."""
    if source == "bento":

        return Path(data) if (data := load_bento_model(tracking.LATE_PAYMENT).params.get("data")) else None
    client = tracking.connect()
    version = client.get_model_version_by_alias(tracking.model_name(tracking.LATE_PAYMENT, only_company()),
                                                tracking.CHAMPION)
    data = client.get_run(version.run_id).data.params.get("data") if version.run_id else None
    return Path(data) if data else None


@dataclass(frozen=True)
class BentoModel:
    """One champion from BentoML's model store: the fitted model, its card, and its training run's data/as-of."""

    model: Any
    card: ModelCard
    params: dict[str, str]


def load_bento_model(name: str) -> BentoModel:
    """The champion ``name`` imported by ``likvid build``; ``StartupError`` when the store has none."""
    import bentoml
    import bentoml.mlflow

    try:
        stored = bentoml.models.get(f"{name}:latest")
    except bentoml.exceptions.NotFound:
        raise StartupError(f"no model {name} in BentoML's model store; run `likvid build`") from None
    meta = dict(stored.info.metadata)
    card = ModelCard(family=name, name=meta.get("name", name), version=str(meta.get("version", "")),
                     run_id=meta.get("run_id") or None, trained_as_of=meta.get("as_of") or None,
                     metrics=dict(meta.get("metrics", {})))
    model = bentoml.mlflow.load_model(stored).unwrap_python_model().model
    return BentoModel(model, card, {"data": meta.get("data", ""), "as_of": meta.get("as_of", "")})


def only_company() -> str:
    """The one company with a late-payment champion in the registry; ``StartupError`` when none or several."""
    try:
        models = tracking.connect().search_registered_models(
            f"tags.`{tracking.FAMILY_TAG}` = '{tracking.LATE_PAYMENT}'")
    except Exception as e:  # noqa: BLE001 - an unreadable store must still say where and what
        raise StartupError(f"cannot read the registry at {tracking.shown_uri()}: {e}") from None
    companies = sorted({m.tags.get(tracking.COMPANY_TAG) for m in models if _has_champion(m)})
    if not companies:
        raise StartupError(f"no '{tracking.CHAMPION}' version of model {tracking.LATE_PAYMENT} for any company in "
                           f"the registry at {tracking.shown_uri()}; run `likvid train DATA` first")
    if len(companies) > 1:
        raise StartupError(f"the registry holds champions of {len(companies)} companies ({', '.join(companies)}); "
                           f"set {ENV_DATA} or pass --data to choose one")
    return companies[0]


def _has_champion(model) -> bool:
    """A registered model with a ``champion`` alias (MLflow lists aliases as a dict or a list)."""
    return tracking.CHAMPION in (getattr(model, "aliases", None) or {})


def load_champions(company: str, policy: Policy, source: str = "registry") -> Champions:
    """The company's four champions, from the MLflow registry or from BentoML's model store (``source="bento"``).

    The one place the service loads models; ``StartupError`` says which one is missing and what to do."""
    from training.cash.model import ForecastModels

    if source not in SOURCES:
        raise StartupError(f"{ENV_SOURCE} must be 'registry' or 'bento', not {source!r}")
    if source == "bento":

        late, timing, segmentation, cash = (load_bento_model(name) for name in families())
        cards = tuple(m.card for m in (late, timing, segmentation, cash))
    else:
        try:
            late, timing, segmentation, cash = (tracking.load_champion(f, company, policy) for f in families())
        except LookupError as e:
            raise StartupError(str(e)) from None
        except Exception as e:  # noqa: BLE001 - an unreadable store must still say where and what
            raise StartupError(f"cannot load the champion models from {tracking.shown_uri()}: {e}") from None
        cards = tuple(model_card(m.family, m.name, m.version, m.run_id)[0] for m in (late, timing, segmentation, cash))
    # The forecast pairs the cash model with the timing model it was registered with (the family's loader).
    pair = cash.model
    forecast = ForecastModels(pair.timing, pair.cash, {**pair.versions, cards[3].family: cards[3].version},
                              pair.features)
    return Champions(late.model, timing.model, segmentation.model, forecast, cards)


def load_state(settings: Settings) -> State:
    """Load the data, the policy, the company's champions and the served history; ``StartupError`` says what is
    missing."""
    data = settings.data or trained_on(settings.source)
    if data is None:
        raise StartupError(f"no data folder given and the champion's training run records none; set {ENV_DATA} "
                           "or pass --data")
    if not data.is_dir():
        raise StartupError(f"data folder {data} does not exist (pass --data DATA)")
    try:
        policy = load_policy(data, settings.config)
        key = policy.company_key(data)
    except PolicyError as e:
        raise StartupError(str(e)) from None
    try:  # the policy's base currency (``--config``) and the mapping apply as in every command
        company = validate(data, settings.mapping, policy=policy).company
    except ContractError as e:
        raise StartupError(f"the data in {data} cannot be used:\n  " + "\n  ".join(e.problems)) from None
    models = load_champions(key, policy, settings.source)
    at = settings.as_of
    if at is None:
        trained = models.cards[0].trained_as_of
        at = pd.Timestamp(trained) if trained else last_known_date(company)
    view = as_of(company, at)
    cfg = FeatureConfig.from_policy(policy)  # as `likvid score`
    state = State(company=company, at=at, data=str(data), policy=policy, company_key=key, models=models, cfg=cfg,
                  known=history(company, at, cfg), customers=frozenset(view[Cust.TABLE][Cust.ID]),
                  open_invoices=int(view[Inv.TABLE][Inv.PAID].isna().sum()))
    _warm_up(state, view[Inv.TABLE])
    return state


def _warm_up(s: State, invoices: pd.DataFrame) -> None:
    """Score one invoice before the first request does: the models' compiled kernels (numba: compiled on a fresh
    install, read from their cache after) and SHAP's first call are then paid at start-up, not by a request."""
    from training.scoring import score_features

    if len(invoices):
        x = invoice_features(s.company, s.at, s.cfg, invoices=invoices.head(1), known=s.known)
        score_features(x, s.models.late, s.models.timing, s.policy)


def absolute_tracking_uri(uri: str) -> str:
    """A relative SQLite store made absolute, so that server workers find it from any folder."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


def serve_environment(data: Path | None, at: pd.Timestamp | None, config: Path | None,
                      mapping: Path | None = None) -> dict[str, str]:
    """The environment ``likvid serve`` hands its server workers: absolute paths, the chosen as-of."""
    env = {"MLFLOW_TRACKING_URI": absolute_tracking_uri(tracking.tracking_uri())}
    env[ENV_DATA] = str(data.resolve()) if data is not None else ""
    env[ENV_AS_OF] = f"{at:%Y-%m-%d}" if at is not None else ""
    env[ENV_CONFIG] = str(config.resolve()) if config is not None else ""
    env[ENV_MAPPING] = str(mapping.resolve()) if mapping is not None else ""
    # One OpenMP thread a process (LightGBM's predictions, numpy's BLAS) unless the user chose otherwise: the
    # workers are already one per core, and a row's prediction does not depend on it. LightGBM's predict ran on
    # every core, and a single invoice cost 29 ms of a worker's CPU instead of 13 (half of it threads waiting).
    env[ENV_OMP_THREADS] = os.environ.get(ENV_OMP_THREADS) or "1"
    return env
