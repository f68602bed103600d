"""A team's tracking store: MLflow on a real PostgreSQL server, started on a loopback port for the run, and the
round trip `likvid train` → `likvid score` → the service (in process, as tests/serving/test_service.py runs it)
against it. Skipped, with the reason, when no
server can be had (no PostgreSQL binaries, or root without a user to run them as)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from features.contract import Inv
from serving import auth
from serving import state as startup
from serving.cli import app
from tests.serving.test_service import asgi_app, request_row
from tests.training.test_tracking import FAST
from training import tracking
from training.pipeline import train

PASSWORD = "pg-s3cret"


def _binaries() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                     key=lambda f: [int(n) for n in Path(f).parent.name.split(".") if n.isdigit()])
    return next((Path(f) for f in reversed(folders) if (Path(f) / "initdb").exists()), None)


def _as_user() -> tuple[list[str], pwd.struct_passwd | None]:
    """The command prefix that runs PostgreSQL as a user it accepts (initdb refuses root), and that user."""
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        if shutil.which("runuser"):
            return ["runuser", "-u", name, "--"], user
        if shutil.which("su"):
            return ["su", "-s", "/bin/sh", "-c", '"$0" "$@"', name, "--"], user
    pytest.skip("PostgreSQL: running as root, and no `postgres` or `nobody` user (with runuser or su) to run "
                "initdb as; initdb refuses root")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A PostgreSQL server for this module on a free loopback port, in a temporary folder, with a password;
    the ``postgresql://`` URI of its database ``likvid`` (no driver named, as a user writes it)."""
    import psycopg

    bin_ = _binaries()
    if bin_ is None:
        pytest.skip("PostgreSQL: no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin "
                    "(Debian: apt-get install postgresql; .ci/run does it)")
    prefix, user = _as_user()
    folder = Path(tempfile.mkdtemp(prefix="likvid-pg-"))  # not under pytest's root-only tmp: the user must reach it
    (folder / "password").write_text(PASSWORD + "\n")
    if user is not None:
        for path in (folder, folder / "password"):
            os.chown(path, user.pw_uid, user.pw_gid)
    data, port = folder / "data", _free_port()
    try:
        made = subprocess.run([*prefix, str(bin_ / "initdb"), "-D", str(data), "-U", "likvid",
                               f"--pwfile={folder / 'password'}", "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"],
                              capture_output=True, text=True, timeout=60)
        if made.returncode != 0:
            pytest.skip(f"PostgreSQL: initdb failed: {(made.stderr or made.stdout)[-500:]}")
        options = f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        started = subprocess.run([*prefix, str(bin_ / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"),
                                  "-w", "-t", "30", "-o", options, "start"], capture_output=True, text=True, timeout=60)
        if started.returncode != 0:
            log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
            pytest.skip(f"PostgreSQL: pg_ctl start failed: {(started.stderr + log)[-500:]}")
        server = f"postgresql://likvid:{PASSWORD}@127.0.0.1:{port}"
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE likvid")
        yield f"{server}/likvid"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*prefix, str(bin_ / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_postgresql_uri_is_opened_with_psycopg_and_shown_without_its_password():
    uri = "postgresql://team:hunter2@db.example:5432/mlflow"
    assert tracking.store_uri(uri) == "postgresql+psycopg://team:hunter2@db.example:5432/mlflow"
    assert tracking.store_uri("postgres://team@db/mlflow") == "postgresql+psycopg://team@db/mlflow"
    for kept in ("postgresql+psycopg2://t:p@db/m", "sqlite:///mlflow.db", "http://mlflow:5000", "file:./mlruns"):
        assert tracking.store_uri(kept) == kept
    assert tracking.shown_uri(uri) == "postgresql://team:***@db.example:5432/mlflow"
    assert tracking.shown_uri("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"
    # One lock per store and company, whoever connects and however the driver is spelled.
    assert tracking.lock_path("acme", uri) == tracking.lock_path("acme", "postgresql+psycopg://bo:x@db.example:5432/mlflow")
    assert tracking.lock_path("acme", uri).parent == Path(tempfile.gettempdir())
    assert "hunter2" not in tracking.lock_path("acme", uri).name


def test_train_score_and_serve_against_a_postgresql_store(postgres, small_loaded, small_company, tmp_path,
                                                          monkeypatch, caplog):
    from sqlalchemy import create_engine, text

    monkeypatch.setenv("MLFLOW_TRACKING_URI", postgres)  # postgresql://..., as a team member sets it
    monkeypatch.chdir(tmp_path)  # the run artifacts (./mlruns) of a store without a server
    assert tracking.tracking_uri().startswith(tracking.POSTGRES)

    trained = train(small_loaded, str(small_company), cfg=FAST)
    assert set(trained.versions) == set(tracking.FAMILIES) and all(d.promote for d in trained.decisions.values())
    assert not (tmp_path / "mlflow.db").exists()  # nothing fell back on the SQLite default
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")]  # no driver noise
    engine = create_engine(tracking.tracking_uri())
    with engine.connect() as db:  # the registry lives in PostgreSQL
        aliases = db.execute(text("SELECT name FROM registered_model_aliases WHERE alias = 'champion'"))
        assert {name for name, in aliases} == {tracking.model_name(f, trained.company) for f in tracking.FAMILIES}
    engine.dispose()

    out = tmp_path / "scored.csv"
    result = CliRunner().invoke(app, ["score", str(small_company), "--out", str(out)])
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out, dtype={"invoice_id": str, "customer_id": str})
    assert len(scored) > 20 and scored["p_late"].between(0, 1).all()

    # `likvid serve` hands its workers the URI with the driver, and the service starts from the store.
    assert startup.serve_environment(None, None, None)["MLFLOW_TRACKING_URI"] == tracking.tracking_uri()
    for name in (startup.ENV_DATA, startup.ENV_AS_OF, startup.ENV_CONFIG, startup.ENV_SOURCE, auth.ENV_TOKEN):
        monkeypatch.delenv(name, raising=False)
    invoices = small_loaded[Inv.TABLE]
    row = invoices[invoices[Inv.ID] == scored.iloc[0]["invoice_id"]].iloc[0]
    with TestClient(asgi_app()) as client:
        info = client.get("/model_info").json()
        assert info["data"] == str(small_company)
        assert [m["version"] for m in info["models"]] == [trained.versions[f] for f in tracking.FAMILIES]
        r = client.post("/score_invoices", json={"invoices": [request_row(row)]})
    assert r.status_code == 200, r.text
    served = r.json()[0]
    assert served["invoice_id"] == row[Inv.ID] and served["p_late"] == pytest.approx(scored.iloc[0]["p_late"], abs=1e-6)
