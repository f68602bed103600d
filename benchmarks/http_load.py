"""HTTP load on loopback: single-invoice calls at a target rate (achieved rate, p50/p95/p99, errors, worker RSS
before and after), optionally mixed with heavy calls running at the same time (the soak), and a flood of
unauthenticated requests to random paths (what it does to the workers' memory and to ``/metrics``).

By default it makes its own company (``--seed 97``, a seed nobody developed on), trains it in a private MLflow
store under ``--workdir``, starts ``likvid serve --workers N`` there and measures; ``--url`` (with ``--pid``, the
``likvid serve`` process, for the RSS figures) measures a service already running. ``LIKVID_API_TOKEN`` is sent
when set (an own service is started with one).

    .venv/bin/python benchmarks/http_load.py [--rate 100] [--seconds 300] [--soak [--soak-seconds 180]]
                                             [--unauth 20000] [--url http://127.0.0.1:3000 --pid PID]

The targets it prints, met or not: 100 single-invoice req/s for 5 min with 0 errors and p99 <= 100 ms; single-
invoice p99 <= 150 ms while heavy endpoints run; 20,000 unauthenticated random-path requests change a worker's
RSS by < 20 MB. The machine's load average is printed beside each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import http_service  # the sibling benchmark (this one runs as a script: its folder is on sys.path)
import numpy as np
import pandas as pd
import psutil

from features.contract import Inv
from serving.heavy import HEAVY_NAME

HEAVY_CALLS = (("/forecast_cash", {"weeks": 13}), ("/collection_worklist", {"top_n": 50}), ("/discounts", {}),
               ("/kpis", {}), ("/provision", {}))
TARGET_RATE, TARGET_P99_MS, TARGET_MIXED_P99_MS, TARGET_RSS_MB = 100, 100.0, 150.0, 20.0


@dataclass
class Run:
    """What one stream of calls saw: latencies of answered calls, and the errors by kind."""

    ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    refused: int = 0  # 503s with Retry-After: a heavy endpoint saying it is busy, as designed
    seconds: float = 0.0
    cpu: str = ""  # what each call cost in CPU (``_cpu_per_call``)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def line(self) -> str:
        if not self.ms:
            return f"no answers; errors {self.errors}"
        p50, p95, p99 = np.percentile(self.ms, [50, 95, 99])
        return (f"{len(self.ms) / self.seconds:.1f} answered/s, p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, "
                f"max {max(self.ms):.0f} ms, errors {sum(self.errors.values())} {self.errors or ''}"
                + (f", busy 503s {self.refused}" if self.refused else "") + (f"; {self.cpu}" if self.cpu else ""))


JSON = {"Content-Type": "application/json"}


def _session(url: str, headers: dict, connections: int, timeout: float) -> aiohttp.ClientSession:
    """An aiohttp client of ``url``. The load generator shares the machine's cores with the service it measures:
    with httpx, and each body encoded as it was sent, it cost 4.7 ms of CPU a single-invoice call (half a
    core at 100 a second), with aiohttp and the bodies encoded first 0.7 ms."""
    return aiohttp.ClientSession(base_url=url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout),
                                 connector=aiohttp.TCPConnector(limit=connections))


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def _workers(pid: int | None) -> list[psutil.Process]:
    """The BentoML worker processes under ``likvid serve`` (pid)."""
    if pid is None:
        return []
    return [p for p in psutil.Process(pid).children(recursive=True)
            if any("_bentoml_impl.worker.service" in part for part in p.cmdline())]


def _rss_mb(workers: list[psutil.Process]) -> list[str]:
    """Each worker's RSS in MB; the heavy service's process (``serving.heavy``) marked ``heavy``."""
    return [f"{p.memory_info().rss / 2**20:.1f}" + (" heavy" if HEAVY_NAME in p.cmdline() else "") for p in workers]


def _cpu_seconds(workers: list[psutil.Process]) -> float:
    """CPU seconds the workers have used so far (user and system)."""
    return sum(t.user + t.system for t in (p.cpu_times() for p in workers))


@contextmanager
def _cpu_per_call(workers: list[psutil.Process], run: Run):
    """Measures the CPU each call cost the workers and this load generator (it shares the machine's cores)."""
    server, client = _cpu_seconds(workers), time.process_time()
    yield
    calls = max(1, len(run.ms) + sum(run.errors.values()))
    run.cpu = "CPU a call: " + (f"workers {(_cpu_seconds(workers) - server) / calls * 1000:.1f} ms, " if workers
                                else "") + f"load generator {(time.process_time() - client) / calls * 1000:.1f} ms"


async def _rate(client: aiohttp.ClientSession, rows: list[dict], rate: float, seconds: float, in_flight: int,
                workers: list[psutil.Process] = (), fresh: bool = False) -> Run:
    """Single-invoice calls sent open-loop at ``rate`` a second for ``seconds``; a latency counts from the call's
    scheduled time, so a client falling behind shows in it. More than ``in_flight`` unanswered calls is an error
    (the service is not keeping up). With ``fresh`` every call names a new invoice id (an invoice the served data
    does not hold, so it is scored, not looked up). The bodies are encoded before the clock starts: the load
    generator shares the machine's cores with the service, so what it spends a call is taken from the service."""
    run, tasks, gate = Run(), [], asyncio.Semaphore(in_flight)
    bodies = [json.dumps({"invoices": [{**rows[i % len(rows)], Inv.ID: f"LOAD-{i}"} if fresh
                                       else rows[i % len(rows)]]}).encode() for i in range(int(rate * seconds))]

    async def one(i: int, due: float) -> None:
        if gate.locked():
            run.error("backlog")
            return
        async with gate:
            try:
                async with client.post("/score_invoices", data=bodies[i], headers=JSON) as r:
                    await r.read()
            except (TimeoutError, aiohttp.ClientError) as e:
                run.error(type(e).__name__)
                return
            if r.status == 200:
                run.ms.append((time.perf_counter() - due) * 1000)
            else:
                run.error(str(r.status))

    with _cpu_per_call(list(workers), run):
        started = time.perf_counter()
        for i in range(len(bodies)):
            due = started + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
        run.seconds = time.perf_counter() - started
    return run


async def _heavy(client: aiohttp.ClientSession, until: float, clients: int) -> Run:
    """``clients`` callers cycling through the heavy endpoints until ``until``."""
    run = Run()

    async def caller(k: int) -> None:
        i = k
        while time.perf_counter() < until:
            path, body = HEAVY_CALLS[i % len(HEAVY_CALLS)]
            i += 1
            started = time.perf_counter()
            try:
                async with client.post(path, json=body) as r:
                    await r.read()
            except (TimeoutError, aiohttp.ClientError) as e:
                run.error(type(e).__name__)
                continue
            if r.status == 200:
                run.ms.append((time.perf_counter() - started) * 1000)
            elif r.status == 503 and "retry-after" in r.headers:
                run.refused += 1
                await asyncio.sleep(float(r.headers["retry-after"]))
            else:
                run.error(f"{path} {r.status}")

    started = time.perf_counter()
    await asyncio.gather(*(caller(k) for k in range(clients)))
    run.seconds = time.perf_counter() - started
    return run


async def _unauthenticated(url: str, n: int, concurrency: int) -> Run:
    """``n`` requests without a token to random paths (401s expected, everything else is an error)."""
    run, gate = Run(), asyncio.Semaphore(concurrency)
    async with _session(url, {}, concurrency, 30) as client:
        async def one() -> None:
            async with gate:
                started = time.perf_counter()
                try:
                    async with client.get(f"/{secrets.token_hex(8)}/{secrets.token_hex(12)}") as r:
                        await r.read()
                except (TimeoutError, aiohttp.ClientError) as e:
                    run.error(type(e).__name__)
                    return
                if r.status == 401:
                    run.ms.append((time.perf_counter() - started) * 1000)
                else:
                    run.error(str(r.status))

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        run.seconds = time.perf_counter() - started
    return run


def _met(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


async def measure(url: str, pid: int | None, args) -> None:
    token = os.environ.get("LIKVID_API_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with _session(url, headers, args.in_flight, 60) as client:
        async with client.get("/model_info", raise_for_status=True) as r:
            info = await r.json()
        rows = http_service.request_rows(info["data"], pd.Timestamp(info["service_as_of"]))  # every field they have
        workers = _workers(pid)
        heavy = sum(HEAVY_NAME in p.cmdline() for p in workers)
        print(f"service over {info['data']} as of {info['service_as_of']}: {len(rows):,} open invoices to draw from;"
              f" {len(workers) or 'unknown'} server processes ({heavy} of them heavy); {_load()}", flush=True)
        await _rate(client, rows, 20, 2, args.in_flight, fresh=args.fresh)  # warm-up
        kind = "new invoice (scored)" if args.fresh else "open invoice of the data (looked up)"
        if args.seconds > 0:
            before = _rss_mb(workers)
            steady = await _rate(client, rows, args.rate, args.seconds, args.in_flight, workers, args.fresh)
            after = _rss_mb(workers)
            p99 = float(np.percentile(steady.ms, 99)) if steady.ms else float("inf")
            held = args.rate >= TARGET_RATE and args.seconds >= 300 and not steady.errors and p99 <= TARGET_P99_MS
            print(f"single {kind} at {args.rate:g} req/s for {args.seconds:g} s: {steady.line()}; worker RSS MB "
                  f"{before} -> {after}; {_load()}")
            print(f"  target {TARGET_RATE} req/s for 300 s, 0 errors, p99 <= {TARGET_P99_MS:g} ms: {_met(held)}"
                  + ("" if args.seconds >= 300 else f" (ran {args.seconds:g} s: a short version)"), flush=True)
        if args.soak:
            until = time.perf_counter() + args.soak_seconds
            before = _rss_mb(workers)
            api = [p for p in workers if HEAVY_NAME not in p.cmdline()]  # their CPU, heavy calls' share included
            single, heavy = await asyncio.gather(_rate(client, rows, args.rate, args.soak_seconds, args.in_flight,
                                                       api, args.fresh),
                                                 _heavy(client, until, args.heavy_clients))
            after = _rss_mb(workers)
            p99 = float(np.percentile(single.ms, 99)) if single.ms else float("inf")
            print(f"mixed soak, {args.soak_seconds:g} s: single {kind} at {args.rate:g} req/s: {single.line()}")
            print(f"  heavy calls ({args.heavy_clients} callers over {', '.join(p for p, _ in HEAVY_CALLS)}): "
                  f"{heavy.line()}; worker RSS MB {before} -> {after}; {_load()}")
            print(f"  target single-invoice p99 <= {TARGET_MIXED_P99_MS:g} ms while heavy endpoints run, 0 errors: "
                  f"{_met(p99 <= TARGET_MIXED_P99_MS and not single.errors)}", flush=True)
    if args.unauth:
        before = _rss_mb(workers)
        flood = await _unauthenticated(url, args.unauth, 16)
        after = _rss_mb(workers)
        growth = max((float(b.split()[0]) - float(a.split()[0]) for a, b in zip(before, after)), default=float("nan"))
        async with _session(url, headers, 1, 60) as client, client.get("/metrics") as r:
            metrics = len(await r.read())
        print(f"{args.unauth:,} unauthenticated random-path requests: {flood.line()}; worker RSS MB {before} -> "
              f"{after}; /metrics {metrics:,} bytes; {_load()}")
        print(f"  target worker RSS change < {TARGET_RSS_MB:g} MB over 20,000: "
              f"{_met(args.unauth >= 20_000 and growth < TARGET_RSS_MB)} (largest change {growth:+.1f} MB)")


@contextmanager
def own_service(workdir: Path, seed: int, customers: int, years: float, workers: int | None):
    """``http_service.own_service`` with a bearer token (the environment's, else a fresh one)."""
    os.environ.setdefault("LIKVID_API_TOKEN", secrets.token_hex(16))
    with http_service.own_service(workdir, seed, customers, years, workers) as served:
        print(_load(), flush=True)
        yield served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="A running service (default: start one on its own company).")
    parser.add_argument("--pid", type=int, default=None, help="With --url: the `likvid serve` process, for RSS.")
    parser.add_argument("--seed", type=int, default=97)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=None, help="`likvid serve --workers` (default: the cores).")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "likvid-http-load")
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="Single-invoice calls a second.")
    parser.add_argument("--seconds", type=float, default=300, help="How long to hold the rate (0: not at all).")
    parser.add_argument("--in-flight", type=int, default=64, help="Unanswered calls allowed before it is an error.")
    parser.add_argument("--fresh", action="store_true", help="Each call a new invoice id: scored, not looked up "
                        "(by default the calls name the served data's open invoices as it holds them).")
    parser.add_argument("--soak", action="store_true", help="Then the same rate with heavy calls alongside.")
    parser.add_argument("--soak-seconds", type=float, default=180)
    parser.add_argument("--heavy-clients", type=int, default=2)
    parser.add_argument("--unauth", type=int, default=20_000, help="Unauthenticated random-path requests (0: none).")
    args = parser.parse_args()
    if args.url:
        asyncio.run(measure(args.url, args.pid, args))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    with own_service(args.workdir.resolve(), args.seed, args.customers, args.years, args.workers) as (url, pid):
        asyncio.run(measure(url, pid, args))


if __name__ == "__main__":
    main()
