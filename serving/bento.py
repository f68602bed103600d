"""The bento: ``likvid build`` copies the four champions from the MLflow registry into BentoML's model store and
builds a bento from bentofile.yaml; inside it, the service loads them from that store (no registry needed)."""

from __future__ import annotations

from pathlib import Path

from serving.state import StartupError, families, model_card, only_company
from training import tracking

BENTOFILE = Path(__file__).resolve().parent.parent / "bentofile.yaml"


def import_champions(company: str | None = None) -> list[str]:
    """Copy ``company``'s four champions (default: the registry's only company) from the registry into BentoML's
    model store (``bentoml.mlflow.import_model``), named by family; their tags. ``LookupError`` names a family
    without a champion."""
    import bentoml.mlflow

    try:
        company = company or only_company()
    except StartupError as e:
        raise LookupError(str(e)) from None
    client, tags = tracking.connect(), []
    for family in families():
        name = tracking.model_name(family, company)
        try:
            version = client.get_model_version_by_alias(name, tracking.CHAMPION)
        except Exception as e:  # noqa: BLE001 - MLflow raises its own exception for a missing alias
            raise LookupError(f"no '{tracking.CHAMPION}' version of model {name} in the registry at "
                              f"{tracking.shown_uri()}; run `likvid train DATA` first") from e
        card, params = model_card(family, name, version.version, version.run_id)
        model = bentoml.mlflow.import_model(
            family, model_uri=f"models:/{name}/{version.version}",
            labels={"registry_version": str(version.version)},
            metadata={"name": name, "version": card.version, "run_id": card.run_id or "",
                      "as_of": card.trained_as_of or "", "data": params.get("data", ""), "metrics": card.metrics},
        )
        tags.append(str(model.tag))
    return tags


def build_bento(bentofile: Path = BENTOFILE):
    """``bentoml build`` with the project's bentofile.yaml; returns the bento."""
    import bentoml.bentos

    return bentoml.bentos.build_bentofile(str(bentofile), build_ctx=str(bentofile.parent))
