"""HTTP service speed: single-invoice latency (p50/p99) at 1 and 8 clients, invoices/s in batches of
1,000, and the same scoring in-process, so that the HTTP overhead reads as a ratio.

Start the service first (``likvid serve --port 3000``, with its MLflow store), then:
    .venv/bin/python benchmarks/http_service.py --url http://127.0.0.1:3000 [--calls 300]
It scores real invoices open at the service's as-of, read from the served data folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pandas as pd

from features.asof import as_of
from features.contract import Cust, Inv
from features.invoices import FeatureConfig, history, invoice_features
from features.load import validate
from serving.schemas import InvoiceIn
from serving.service import FastFeatures, invoice_frame
from training import tracking
from training.pipeline import score_features


def _rows(data: str, at: pd.Timestamp) -> list[dict]:
    inv = as_of(validate(data).company, at)[Inv.TABLE]
    inv = inv[inv[Inv.PAID].isna()]
    rows = []
    for r in inv.itertuples(index=False):
        row = {"invoice_id": r.invoice_id, "customer_id": r.customer_id, "issue_date": f"{r.issue_date:%Y-%m-%d}",
               "due_date": f"{r.due_date:%Y-%m-%d}", "amount": float(r.amount)}
        if isinstance(r.delivery, str):
            row["delivery"] = r.delivery
        rows.append(row)
    return rows


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--batches", type=int, default=5)
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {os.environ['LIKVID_API_TOKEN']}"} if os.environ.get("LIKVID_API_TOKEN") else {}
    client = httpx.Client(headers=headers, timeout=120, limits=httpx.Limits(max_connections=16))
    info = client.get(f"{args.url}/model_info").raise_for_status().json()
    at = pd.Timestamp(info["service_as_of"])
    rows = _rows(info["data"], at)
    print(f"service over {info['data']} as of {at:%Y-%m-%d}: {len(rows):,} open invoices to draw from")
    single(client, args.url, rows, 20, 1)  # warm-up
    for clients in (1, 8):
        ms = single(client, args.url, rows, args.calls, clients)
        print(f"single invoice, {clients} client{'s' if clients > 1 else ''}: p50 {_pct(ms, 50):.1f} ms, "
              f"p99 {_pct(ms, 99):.1f} ms, {args.calls / (sum(ms) / 1000 / clients):.0f} calls/s ({args.calls} calls)")
    batch = [{**rows[i % len(rows)], "invoice_id": f"B{i}"} for i in range(1000)]
    took = []
    for _ in range(args.batches):
        started = time.perf_counter()
        assert len(client.post(f"{args.url}/score_invoices", json={"invoices": batch}).raise_for_status().json()) == 1000
        took.append(time.perf_counter() - started)
    http_batch = statistics.median(took)
    print(f"batches of 1,000 over HTTP: {1000 / http_batch:,.0f} invoices/s (median of {args.batches})")

    # The same work in-process: request rows -> features from the history built once -> scores.
    late = tracking.load_champion(tracking.LATE_PAYMENT)[0]
    timing = tracking.load_champion(tracking.PAYMENT_TIMING)[0]
    company = validate(info["data"]).company
    known = history(company, at, FeatureConfig())
    fast = FastFeatures.build(company, known, set(as_of(company, at)[Cust.TABLE][Cust.ID]))

    def in_process(request: list[dict]) -> float:
        """What the service does per request, without HTTP: validate, features (its fast path), score."""
        started = time.perf_counter()
        invoices = [InvoiceIn.model_validate_json(json.dumps(r)) for r in request]
        x = fast.features(invoices)
        if x is None:
            x = invoice_features(company, at, FeatureConfig(), invoice_frame(invoices), known)
        score_features(x, late, timing)
        return time.perf_counter() - started

    ms = [in_process([rows[i % len(rows)]]) * 1000 for i in range(args.calls)]
    local_batch = statistics.median(in_process(batch) for _ in range(args.batches))
    http_single = _pct(single(client, args.url, rows, args.calls, 1), 50)
    print(f"in-process single invoice: p50 {_pct(ms, 50):.1f} ms, p99 {_pct(ms, 99):.1f} ms; "
          f"HTTP/in-process p50 ratio {http_single / _pct(ms, 50):.2f}")
    print(f"in-process batches of 1,000: {1000 / local_batch:,.0f} invoices/s; "
          f"HTTP/in-process time ratio {http_batch / local_batch:.2f}")


if __name__ == "__main__":
    main()
