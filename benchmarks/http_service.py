"""HTTP service speed: single-invoice latency (p50/p99) at 1 and 8 clients, invoices/s in batches of
1,000, and the same scoring in-process, so that the HTTP overhead reads as a ratio.

By default it makes its own company with a seed nobody developed on (``--seed 97``), trains it in a private
MLflow store under ``--workdir``, starts ``likvid serve`` there, and measures; ``--url`` measures a service
already running instead. Every request invoice carries its ``order_id`` when it has one, as real ones do:
    .venv/bin/python benchmarks/http_service.py [--seed 97] [--calls 300] [--url http://127.0.0.1:3000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from features.asof import as_of
from features.contract import Inv
from features.invoices import FeatureConfig, history, invoice_features
from features.load import validate
from features.policy import load_policy
from serving.schemas import InvoiceIn, invoice_frame
from training.pipeline import champion_pair
from training.scoring import score_features

LIKVID = [sys.executable, "-m", "serving.cli"]


def request_rows(data: str, at: pd.Timestamp) -> list[dict]:
    """Request rows of the invoices open at ``at``, with every field they have (order ids included)."""
    inv = as_of(validate(data).company, at)[Inv.TABLE]
    inv = inv[inv[Inv.PAID].isna()]
    rows = []
    for r in inv.itertuples(index=False):
        row = {"invoice_id": r.invoice_id, "customer_id": r.customer_id, "issue_date": f"{r.issue_date:%Y-%m-%d}",
               "due_date": f"{r.due_date:%Y-%m-%d}", "amount": float(r.amount)}
        for col in (Inv.DELIVERY, Inv.ORDER, Inv.CURRENCY):
            if isinstance(getattr(r, col), str) and getattr(r, col):
                row[col] = getattr(r, col)
        if pd.notna(r.dispute_date):
            row[Inv.DISPUTE] = f"{r.dispute_date:%Y-%m-%d}"
        rows.append(row)
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def own_service(workdir: Path, seed: int, customers: int, years: float, workers: int | None = None):
    """A company generated with ``seed``, trained in a private store, served on a free port (with the
    environment's ``LIKVID_API_TOKEN``, and ``--workers`` when given): its URL and the serve process's pid."""
    data, env = workdir / f"company-{seed}", {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}"}
    if not data.exists():
        subprocess.run([*LIKVID, "generate", str(data), "--customers", str(customers), "--years", str(years),
                        "--seed", str(seed)], check=True, env=env, cwd=workdir, stdout=subprocess.DEVNULL)
    if not (workdir / "mlflow.db").exists():
        print(f"training on {data} (seed {seed}) ...", flush=True)
        subprocess.run([*LIKVID, "train", str(data)], check=True, env=env, cwd=workdir, stdout=subprocess.DEVNULL)
    os.environ["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"]  # the in-process part reads the same store
    port = _free_port()
    extra = ["--workers", str(workers)] if workers else []
    proc = subprocess.Popen([*LIKVID, "serve", "--data", str(data), "--port", str(port), *extra], env=env,
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"`likvid serve` stopped with exit code {proc.returncode}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > started + 300:
                raise SystemExit("the service did not become ready in 5 minutes")
            time.sleep(0.5)
        print(f"`likvid serve` ready in {time.monotonic() - started:.0f} s", flush=True)
        yield url, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _pct(ms: list[float], q: float) -> float:
    return float(np.percentile(ms, q))


def single(client: httpx.Client, url: str, rows: list[dict], calls: int, clients: int) -> list[float]:
    """Latencies (ms) of single-invoice calls, ``clients`` at a time."""
    def one(i: int) -> float:
        started = time.perf_counter()
        r = client.post(f"{url}/score_invoices", json={"invoices": [rows[i % len(rows)]]})
        r.raise_for_status()
        return (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(calls)))


def measure(url: str, calls: int, batches: int) -> None:
    """Print the figures against the service at ``url``."""
    token = os.environ.get("LIKVID_API_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client = httpx.Client(headers=headers, timeout=120, limits=httpx.Limits(max_connections=16))
    info = client.get(f"{url}/model_info").raise_for_status().json()
    at = pd.Timestamp(info["service_as_of"])
    rows = request_rows(info["data"], at)
    linked = sum(Inv.ORDER in r for r in rows)
    print(f"service over {info['data']} as of {at:%Y-%m-%d}: {len(rows):,} open invoices to draw from, "
          f"{linked:,} with an order_id")
    if linked:  # the figures are for invoices linked to an order, as real ones are
        rows = [r for r in rows if Inv.ORDER in r]
    single(client, url, rows, 20, 1)  # warm-up
    # An open invoice of the served data is looked up (scored at start-up); a new id is scored on the call.
    new = [{**r, Inv.ID: f"NEW-{i}"} for i, r in enumerate(rows)]
    for kind, asked in (("open invoice of the data (looked up)", rows), ("new invoice (scored)", new)):
        for clients in (1, 8):
            ms = single(client, url, asked, calls, clients)
            print(f"single {kind} with order_id, {clients} client{'s' if clients > 1 else ''}: p50 "
                  f"{_pct(ms, 50):.1f} ms, p99 {_pct(ms, 99):.1f} ms, {calls / (sum(ms) / 1000 / clients):.0f} "
                  f"calls/s ({calls} calls)")
    batch = [{**rows[i % len(rows)], "invoice_id": f"B{i}"} for i in range(1000)]
    took = []
    for _ in range(batches):
        started = time.perf_counter()
        assert len(client.post(f"{url}/score_invoices", json={"invoices": batch}).raise_for_status().json()) == 1000
        took.append(time.perf_counter() - started)
    http_batch = statistics.median(took)
    print(f"batches of 1,000 over HTTP: {1000 / http_batch:,.0f} invoices/s (median of {batches})")

    # The same work in-process: request rows -> features from the history built once -> scores.
    company = validate(info["data"]).company
    policy = load_policy(info["data"])
    late, timing = champion_pair(info["company"], policy)
    cfg = FeatureConfig.from_policy(policy)
    known = history(company, at, cfg)

    def in_process(request: list[dict]) -> float:
        """What the service does per request, without HTTP: validate, features (the one path), score."""
        started = time.perf_counter()
        invoices = [InvoiceIn.model_validate_json(json.dumps(r)) for r in request]
        x = invoice_features(company, at, cfg, invoices=invoice_frame(invoices), known=known)
        score_features(x, late, timing, policy)
        return time.perf_counter() - started

    with threadpool_limits(1):  # one OpenMP thread, as in the server's processes (serving.state.serve_environment)
        ms = [in_process([new[i % len(new)]]) * 1000 for i in range(calls)]
        local_batch = statistics.median(in_process(batch) for _ in range(batches))
    http_single = _pct(single(client, url, new, calls, 1), 50)
    print(f"in-process single new invoice: p50 {_pct(ms, 50):.1f} ms, p99 {_pct(ms, 99):.1f} ms; "
          f"HTTP/in-process p50 ratio {http_single / _pct(ms, 50):.2f}")
    print(f"in-process batches of 1,000: {1000 / local_batch:,.0f} invoices/s; "
          f"HTTP/in-process time ratio {http_batch / local_batch:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="A running service (default: start one on its own company).")
    parser.add_argument("--seed", type=int, default=97, help="Seed of the generated company (not one developed on).")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--years", type=float, default=2.0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/likvid-http-benchmark"))
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--batches", type=int, default=5)
    args = parser.parse_args()
    if args.url:
        measure(args.url, args.calls, args.batches)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    with own_service(args.workdir.resolve(), args.seed, args.customers, args.years) as (url, _):
        measure(url, args.calls, args.batches)


if __name__ == "__main__":
    main()
