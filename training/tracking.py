"""MLflow plumbing: where runs go, how models are logged and registered, and the promotion gate.

The tracking location comes from ``MLFLOW_TRACKING_URI`` and defaults to an embedded SQLite store
(``mlflow.db``) in the working folder, which also holds the model registry. Serving and scoring
use the registry alias ``champion``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import joblib
import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
CHAMPION = "champion"
LATE_PAYMENT = "likvid-late-payment"
PAYMENT_TIMING = "likvid-payment-timing"
SEGMENTATION = "likvid-segmentation"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def connect() -> MlflowClient:
    """Point MLflow at the configured store and return a client."""
    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_registry_uri(tracking_uri())
    return MlflowClient()


class LikvidModel(mlflow.pyfunc.PythonModel):
    """A pyfunc around one of likvid's fitted models (a joblib artifact).

    ``predict`` takes invoice feature rows; ``unwrap_python_model().model`` is the fitted object,
    for reasons and sampling that pyfunc's predict cannot express.
    """

    def __init__(self, kind: str):
        self.kind = kind

    def load_context(self, context) -> None:
        self.model = joblib.load(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        if self.kind == LATE_PAYMENT:
            return pd.DataFrame({"p_late": self.model.predict_proba(model_input)})
        q = self.model.quantiles(model_input)
        return pd.DataFrame({"delay_p10": q[:, 0], "delay_p50": q[:, 1], "delay_p90": q[:, 2]})


@contextmanager
def scratch_store() -> Iterator[Path]:
    """A temporary folder holding its own MLflow store, worked in (MLflow writes run artifacts to
    ./mlruns): for scripts that train and measure without touching the user's registry. The tracking
    location and working folder are restored afterwards."""
    here, before = Path.cwd(), os.environ.get("MLFLOW_TRACKING_URI")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(here)
            if before is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = before


def _requirements() -> list[str]:
    return [f"{p}=={version(p)}" for p in ("lightgbm", "scikit-learn", "pandas", "numpy", "joblib", "mlflow")]


def log_model(model: object, kind: str, example: pd.DataFrame) -> mlflow.models.model.ModelInfo:
    """Log a fitted model as a pyfunc with signature and input example, registered under ``kind``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.joblib"
        joblib.dump(model, path)
        wrapper = LikvidModel(kind)
        wrapper.model = model
        output = wrapper.predict(None, example)
        return mlflow.pyfunc.log_model(
            name="model", python_model=LikvidModel(kind), artifacts={"model": str(path)},
            signature=infer_signature(example, output), input_example=example,
            registered_model_name=kind, pip_requirements=_requirements(),
        )


def load_champion(name: str) -> tuple[object, object]:
    """The champion's fitted model and its registry version; a clear error when there is none."""
    client = connect()
    try:
        mv = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as e:
        raise LookupError(f"no '{CHAMPION}' version of model {name} in the registry at {tracking_uri()}; "
                          "run `likvid train DATA` first") from e
    model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}").unwrap_python_model().model
    return model, mv


def champion_or_none(name: str) -> tuple[object, object] | None:
    try:
        return load_champion(name)
    except LookupError:
        return None
    except Exception as e:  # noqa: BLE001 - an unloadable champion cannot block a new model
        mlflow.set_tag(f"gate.{name}.champion_error", str(e)[:500])
        return None


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    metric: str
    candidate: float
    champion: float | None
    reason: str


def gate(metric: str, candidate: float, champion: float | None, lower_is_better: bool = True,
         tolerance: float = 0.0) -> GateDecision:
    """Promote a candidate unless it is worse than the champion on the same holdout."""
    if champion is None:
        return GateDecision(True, metric, candidate, None, "no champion yet")
    worse = candidate > champion + tolerance if lower_is_better else candidate < champion - tolerance
    verdict = "worse than" if worse else "not worse than"
    return GateDecision(not worse, metric, candidate, champion,
                        f"candidate {metric} {candidate:.4f} is {verdict} champion's {champion:.4f}")


def apply_gate(name: str, info, decision: GateDecision) -> None:
    """Record the decision on the run and the new version; move the champion alias if promoted."""
    client = connect()
    version_ = info.registered_model_version
    mlflow.set_tags({"gate.decision": "promote" if decision.promote else "keep",
                     "gate.reason": decision.reason, "gate.metric": decision.metric,
                     "registered_version": str(version_)})
    mlflow.log_metric(f"gate_candidate_{decision.metric}", decision.candidate)
    if decision.champion is not None:
        mlflow.log_metric(f"gate_champion_{decision.metric}", decision.champion)
    client.set_model_version_tag(name, version_, "gate", "promote" if decision.promote else "keep")
    client.set_model_version_tag(name, version_, "gate_reason", decision.reason)
    if decision.promote:
        client.set_registered_model_alias(name, CHAMPION, version_)
