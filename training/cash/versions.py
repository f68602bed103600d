"""Saved forecasts (``likvid forecast --save``): each an MLflow run of the company's forecast experiment.

A version is immutable: its run holds the forecast table (``forecast.csv``), the as-of, weeks, paths, seed,
shocks and the model versions it was made with, and a SHA-256 of the table; loading refuses a table whose
hash no longer matches, and saving never reuses a run. The version id is the run id. Kept in MLflow because
that is where a team already looks for the company's models and runs.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd

from training import tracking
from training.cash.shocks import SHOCK_FIELDS, Shocks

KIND_TAG, KIND = "likvid.kind", "forecast_version"
TABLE = "forecast.csv"
LIST_COLUMNS = ["version", "as_of", "saved_at", "weeks", "shocks", "models"]
_DATES = ("week_start", "week_end")


def experiment_name(company_key: str) -> str:
    """The company's forecast experiment, named like its registered cash-forecast model."""
    return tracking.model_name(tracking.CASH_FORECAST, company_key)


@dataclass(frozen=True)
class ForecastVersion:
    """One saved forecast: what it said and everything needed to remake it."""

    version: str
    company: str
    as_of: pd.Timestamp
    weeks: int
    paths: int
    seed: int
    shocks: Shocks
    models: dict[str, str]
    saved_at: pd.Timestamp
    table: pd.DataFrame = field(repr=False)


def _digest(table: pd.DataFrame) -> str:
    return hashlib.sha256(table.to_csv(index=False).encode()).hexdigest()


def save_version(table: pd.DataFrame, company_key: str, as_of: pd.Timestamp, shocks: Shocks, models: dict[str, str],
                 *, paths: int, seed: int, data: str = "") -> str:
    """Keep ``table`` (the forecast rows) as a new version of ``company_key``'s forecasts; its id."""
    tracking.connect()
    mlflow.set_experiment(experiment_name(company_key))
    with mlflow.start_run(run_name=f"forecast {as_of:%Y-%m-%d}") as run, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / TABLE
        table.to_csv(path, index=False)
        mlflow.set_tags({KIND_TAG: KIND, tracking.COMPANY_TAG: company_key,
                         "likvid.table_sha256": _digest(pd.read_csv(path)), "mlflow.note.content":
                         "A saved cash forecast (immutable): compare it with what happened by `likvid variance`."})
        mlflow.log_params({"as_of": f"{as_of:%Y-%m-%d}", "weeks": len(table), "paths": paths, "seed": seed,
                           "shocks": json.dumps({k: getattr(shocks, k) for k in SHOCK_FIELDS}, sort_keys=True),
                           "models": json.dumps(models, sort_keys=True), "data": str(data), "company": company_key})
        mlflow.log_artifact(str(path))
        return run.info.run_id


def _runs(company_key: str) -> list:
    client = tracking.connect()
    experiment = client.get_experiment_by_name(experiment_name(company_key))
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], filter_string=f"tags.`{KIND_TAG}` = '{KIND}'",
                              order_by=["attributes.start_time ASC"], max_results=10_000)


def list_versions(company_key: str) -> pd.DataFrame:
    """The company's saved forecasts, oldest first (``LIST_COLUMNS``)."""
    rows = [{"version": r.info.run_id, "as_of": r.data.params["as_of"],
             "saved_at": pd.Timestamp(r.info.start_time, unit="ms").strftime("%Y-%m-%d %H:%M:%S"),
             "weeks": int(r.data.params["weeks"]), "shocks": r.data.params["shocks"], "models": r.data.params["models"]}
            for r in _runs(company_key)]
    return pd.DataFrame(rows, columns=LIST_COLUMNS)


def load_version(company_key: str, version: str) -> ForecastVersion:
    """A saved forecast by its id (or a unique prefix of at least 6 characters); ``LookupError`` naming what
    is known when there is no such version, ``ValueError`` when its table was changed after saving."""
    runs = _runs(company_key)
    hits = [r for r in runs if len(version) >= 6 and r.info.run_id.startswith(version)]
    if len(hits) != 1:
        known = ", ".join(r.info.run_id[:8] for r in runs) or "none yet (save one with `likvid forecast --save`)"
        said = "is ambiguous" if hits else "is not a saved forecast"
        raise LookupError(f"version {version!r} {said} of company {company_key}; saved versions: {known}")
    run = hits[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=TABLE, dst_path=tmp)
        table = pd.read_csv(path)
    if _digest(table) != run.data.tags.get("likvid.table_sha256"):
        raise ValueError(f"version {run.info.run_id} of company {company_key} was changed after it was saved "
                         "(its table no longer matches its hash); versions are immutable")
    for c in _DATES:
        table[c] = pd.to_datetime(table[c])
    p = run.data.params
    return ForecastVersion(run.info.run_id, company_key, pd.Timestamp(p["as_of"]), int(p["weeks"]), int(p["paths"]),
                           int(p["seed"]), Shocks(**json.loads(p["shocks"])), json.loads(p["models"]),
                           pd.Timestamp(run.info.start_time, unit="ms"), table)


def load_models(company_key: str, versions: dict[str, str]):
    """The ``ForecastModels`` a version was made with (its registered cash-forecast version)."""
    name = tracking.model_name(tracking.CASH_FORECAST, company_key)
    number = versions.get(tracking.CASH_FORECAST)
    if not number:
        raise LookupError(f"the version names no {tracking.CASH_FORECAST} model version, so it cannot be remade")
    tracking.connect()
    return mlflow.pyfunc.load_model(f"models:/{name}/{number}").unwrap_python_model().model
