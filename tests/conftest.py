"""Shared fixtures: tiny inline companies and one small generated company per session."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.synthetic import SyntheticConfig, generate, write

TODAY = "2025-07-01"


def write_tables(folder: Path, fmt: str = "csv", **tables: pd.DataFrame | list[dict]) -> Path:
    """Write inline tables (frames or lists of row dicts) as a data folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
        if fmt == "csv":
            frame.to_csv(folder / f"{name}.csv", index=False)
        else:
            frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def tiny_customers() -> list[dict]:
    return [
        {"customer_id": "007", "name": "Acme", "country": "SE", "industry": "retail"},
        {"customer_id": "008", "name": "Beta", "country": "NO", "industry": "services"},
    ]


def tiny_invoices() -> list[dict]:
    return [
        {"invoice_id": "I1", "customer_id": "007", "issue_date": "2025-01-01", "due_date": "2025-01-31",
         "amount": "100", "paid_date": "2025-02-05", "delivery": "paper", "order_id": "O1"},
        {"invoice_id": "I2", "customer_id": "008", "issue_date": "2025-01-03", "due_date": "2025-02-02",
         "amount": "50.5", "paid_date": "", "delivery": "electronic", "order_id": ""},
        {"invoice_id": "I3", "customer_id": "007", "issue_date": "2025-02-01", "due_date": "2025-03-01",
         "amount": "75", "paid_date": "2025-02-20", "delivery": "", "order_id": ""},
    ]


def tiny_orders() -> list[dict]:
    return [{"order_id": "O1", "customer_id": "007", "order_date": "2024-12-20", "amount": "100",
             "promised_date": "2024-12-30", "cancelled": "false"}]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A valid three-invoice company."""
    return write_tables(tmp_path / "tiny", customers=tiny_customers(), invoices=tiny_invoices(),
                        orders=tiny_orders())


@pytest.fixture(scope="session")
def small_company(tmp_path_factory) -> Path:
    """A small generated company (60 customers, 18 months) written as csv."""
    out = tmp_path_factory.mktemp("company")
    return write(generate(SyntheticConfig(customers=60, years=1.5, seed=11)), out)


@pytest.fixture(scope="session")
def small_loaded(small_company):
    from features.load import validate

    return validate(small_company).company


@pytest.fixture(scope="session")
def fitted(small_loaded):
    """Both models fitted on the small company (no MLflow), with the training split."""
    from training.examples import ExampleConfig, not_yet_due, split
    from training.late_payment import build_late_payment, time_slices
    from training.payment_timing import build_payment_timing

    at, origin, train, holdout = split(small_loaded, None, ExampleConfig(every_days=21, holdout_days=60))
    tr = not_yet_due(train)
    fit, cal = time_slices(tr, 0.25)
    late = build_late_payment().fit(fit, fit["late"].to_numpy(), cal, cal["late"].to_numpy())
    timing = build_payment_timing().fit(train, train["delay"].to_numpy(), train["censored"].to_numpy())
    return {"at": at, "origin": origin, "train": train, "holdout": holdout, "late": late, "timing": timing}


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An empty MLflow store (tracking and registry) in a temporary working folder."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri


@pytest.fixture
def champions(store, small_loaded, small_company, fitted):
    """The ``fitted`` late-payment and timing models registered as the small company's champions in the ``store``."""
    import mlflow

    from features.invoices import FEATURES, invoice_features
    from training import tracking
    from training.invoice_families import late_payment_output, payment_timing_output

    tracking.connect()
    mlflow.set_experiment("fixture-champions")
    example = invoice_features(small_loaded, fitted["at"])[FEATURES].head(5)
    with mlflow.start_run():
        for model, name, output in ((fitted["late"], tracking.LATE_PAYMENT, late_payment_output),
                                    (fitted["timing"], tracking.PAYMENT_TIMING, payment_timing_output)):
            info = tracking.log_model(model, name, small_company.name, example, output)
            tracking.promote(name, small_company.name, info.registered_model_version)
    return store
