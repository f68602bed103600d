"""Pay dates a controller can plan on: ``score``'s predicted_pay_date and p10-p90 band against what happened.

Target (issue 14): of the invoices open at as-of and later paid, at least 60 % paid within 3 days of
``predicted_pay_date``, and 80 % +- 3 % inside ``pay_date_p10``-``pay_date_p90``; beside the due date plus the
customer's average delay (the baseline). Runs the product's own commands on companies nobody developed on:
``likvid generate --seed S``, ``likvid train --as-of A`` and ``likvid score --as-of A`` (A: ``--before`` days
before the company's last day), in a private MLflow store under a temporary folder, then compares the scores
with the paid dates the full data shows. Prints the figures overall and by segment (overdue at as-of or not;
the customer's payment run; its terms), and for overdue invoices of run payers the share paid at their next run;
beside them, the share an oracle that knows the generator's latent facts reaches (``oracle_errors``): the ceiling.

Run: .venv/bin/python benchmarks/pay_dates.py [--seeds 101 202 303] [--customers 500] [--years 3] [--before 91]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from features import cash
from features.asof import last_known_date
from features.contract import Inv
from features.invoices import invoice_features
from features.load import load
from training.payment_timing import PAY_DATE_WITHIN_DAYS as WITHIN_DAYS
from training.payment_timing import RUN_NAMES, average_delay_baseline


def _likvid(*args: str, env: dict) -> None:
    likvid = shutil.which("likvid") or str(Path(os.sys.executable).with_name("likvid"))
    subprocess.run([likvid, *args], check=True, env=env, stdout=subprocess.DEVNULL)


def figures(days_error: np.ndarray, inside: np.ndarray) -> dict[str, float]:
    """MAE in days, the share within ``WITHIN_DAYS`` and the band's coverage."""
    err = np.abs(days_error)
    return {"n": len(err), "mae_days": float(err.mean()) if len(err) else np.nan,
            "within_3d": float((err <= WITHIN_DAYS).mean()) if len(err) else np.nan,
            "coverage_p10_p90": float(inside.mean()) if len(inside) else np.nan}


ORACLE_DRAWS = 2000


def oracle_errors(data: Path, at: pd.Timestamp, scored: pd.DataFrame, company, seed: int) -> np.ndarray:
    """Per scored invoice, actual pay day minus the day an oracle would name: one that knows what the generator
    drew each payment from (``truth/``: the invoice's mean delay and spread, the customer's run and risk, the
    reminder's chance of working), draws the pay day as the generator does, conditions on still open at ``at``, and
    names the centre of the most likely window of +- ``WITHIN_DAYS`` days. No model of the ledgers can know more,
    so its share within the window bounds what ``predicted_pay_date`` can reach on this company. Its draws are not
    conditioned on being paid at all (the rows scored here exclude invoices written off, which the generator decides
    after the pay day): the extra tail can only blur its window, so the true ceiling may be a little higher."""
    from features.control import in_control
    from features.synthetic import _EPOCH, next_run, reminder_day, response_chance

    truth = pd.read_csv(data / "truth" / "invoices.csv", dtype={Inv.ID: str}).set_index(Inv.ID)
    people = pd.read_csv(data / "truth" / "customers.csv", dtype={"customer_id": str}).set_index("customer_id")
    team = pd.read_csv(data / "truth" / "team.csv").iloc[0]
    inv = company[Inv.TABLE].set_index(Inv.ID).reindex(scored["invoice_id"])
    t = truth.reindex(scored["invoice_id"])
    who = people.reindex(inv[Inv.CUSTOMER].to_numpy())
    day = lambda s: ((pd.DatetimeIndex(s).values.astype("datetime64[D]") - _EPOCH)  # noqa: E731
                     .astype("timedelta64[D]").astype(np.int64))
    due, issue, now = day(inv[Inv.DUE]), day(inv[Inv.ISSUE]), int(day([at])[0])
    kind = who["payment_run"].map({"ad hoc": 0, "weekly": 1, "monthly": 2}).to_numpy()
    runs = tuple(np.repeat(v[:, None], ORACLE_DRAWS, axis=1).ravel()
                 for v in (kind, who["run_weekday"].to_numpy(), who["run_monthday"].to_numpy()))
    rng = np.random.default_rng([seed, 2718])
    n = len(scored)
    intended = due[:, None] + np.round(t["mu_days"].to_numpy()[:, None] + t["scale_days"].to_numpy()[:, None]
                                       * rng.gumbel(0, 1, (n, ORACLE_DRAWS))).astype(np.int64)
    intended = np.maximum(intended, issue[:, None] + 1)
    unchased = next_run(intended.ravel(), *runs).reshape(n, ORACLE_DRAWS)
    remind = reminder_day(due)
    disputed = (inv[Inv.DISPUTE].notna() & (day(inv[Inv.DISPUTE].fillna(pd.Timestamp("2262-01-01"))) <= remind)
                ).to_numpy()
    p = response_chance(float(team["reminder_response"]), who["risk"].to_numpy(), disputed)
    responds = rng.random((n, ORACLE_DRAWS)) < p[:, None]
    sooner = next_run((remind[:, None] + rng.integers(0, 4, (n, ORACLE_DRAWS))).ravel(), *runs).reshape(n, -1)
    chased = np.where(responds & (unchased > remind[:, None]), np.minimum(unchased, sooner), unchased)
    control = in_control(scored["invoice_id"].to_numpy(), float(team["control_share"]))
    pay = np.where((unchased > remind[:, None]) & ~control[:, None], chased, unchased) - now
    # The most likely window among the draws still open at ``at`` (pay day after it).
    span = int(pay.max()) + 2 * WITHIN_DAYS + 2
    counts = np.zeros((n, span))
    rows = np.repeat(np.arange(n), ORACLE_DRAWS)
    later = (pay > 0).ravel()
    np.add.at(counts, (rows[later], pay.ravel()[later]), 1.0)
    edge = np.concatenate([np.zeros((n, 1)), np.cumsum(counts, axis=1)], axis=1)
    width = 2 * WITHIN_DAYS + 1
    mass = edge[:, width:] - edge[:, :-width]  # window starting at day j: days j .. j + width - 1
    centre = np.argmax(mass, axis=1) + WITHIN_DAYS
    return day(scored["paid"]) - now - centre


def one_seed(seed: int, customers: int, years: float, before: int, work: Path) -> pd.DataFrame:
    """One row per open invoice at as-of that was paid later: likvid's and the baseline's errors."""
    data = work / f"company_{seed}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    _likvid("generate", str(data), "--seed", str(seed), "--customers", str(customers), "--years", str(years), env=env)
    company = load(data)
    at = last_known_date(company) - pd.Timedelta(days=before)
    started = time.perf_counter()
    _likvid("train", str(data), "--as-of", f"{at:%Y-%m-%d}", env=env)
    trained = time.perf_counter() - started
    _likvid("score", str(data), "--as-of", f"{at:%Y-%m-%d}", "--out", str(work / f"score_{seed}.csv"), env=env)
    print(f"seed {seed}: trained as of {at:%Y-%m-%d} in {trained:.0f} s")

    scored = pd.read_csv(work / f"score_{seed}.csv", dtype={"invoice_id": str, "customer_id": str},
                         parse_dates=["due_date", "predicted_pay_date", "pay_date_p10", "pay_date_p90"])
    inv = company[Inv.TABLE].set_index(Inv.ID)
    paid = inv[Inv.PAID].reindex(scored["invoice_id"]).to_numpy()
    scored = scored.assign(paid=paid)
    scored = scored[scored["paid"].notna()].reset_index(drop=True)
    x = invoice_features(company, at).set_index(Inv.ID).reindex(scored["invoice_id"]).reset_index()
    base = average_delay_baseline(x)
    due = scored["due_date"]
    base_dates = [due + pd.to_timedelta(b, unit="D") for b in base]
    known = company[Inv.TABLE][company[Inv.TABLE][Inv.PAID] <= at]
    runs = cash.payment_runs(known[Inv.PAID], known[Inv.CUSTOMER]).reindex(scored["customer_id"])
    kind = runs["kind"].fillna(cash.RUN_NONE).astype(int).to_numpy()
    weekday, monthday = (runs[c].fillna(0).astype(int).to_numpy() for c in ("weekday", "monthday"))
    next_run = cash.snap_to_runs(np.ones((len(scored), 1)), at, kind, weekday, monthday, np.ones(len(scored)))[:, 0]
    day = lambda s: (pd.DatetimeIndex(s) - at).days.to_numpy(float)  # noqa: E731
    return pd.DataFrame({
        "seed": seed, "overdue": (due < at).to_numpy(), "run": [RUN_NAMES[k] for k in kind],
        "terms": x["terms_days"].to_numpy(),
        "error": day(scored["paid"]) - day(scored["predicted_pay_date"]),
        "inside": ((scored["paid"] >= scored["pay_date_p10"]) & (scored["paid"] <= scored["pay_date_p90"])).to_numpy(),
        "base_error": day(scored["paid"]) - day(base_dates[1]),
        "base_inside": ((scored["paid"] >= base_dates[0]) & (scored["paid"] <= base_dates[2])).to_numpy(),
        "oracle_error": oracle_errors(data, at, scored, company, seed),
        "paid_at_next_run": day(scored["paid"]) == next_run,
        "predicted_next_run": day(scored["predicted_pay_date"]) == next_run,
    })


def report(rows: pd.DataFrame) -> None:
    def line(name: str, part: pd.DataFrame) -> None:
        ours, base = figures(part["error"], part["inside"]), figures(part["base_error"], part["base_inside"])
        print(f"  {name:<34} n={ours['n']:>5}  likvid: within 3 d {ours['within_3d']:6.1%}"
              f"  MAE {ours['mae_days']:5.1f} d  p10-p90 {ours['coverage_p10_p90']:6.1%}"
              f"   | due + average delay: {base['within_3d']:6.1%}"
              f"  MAE {base['mae_days']:5.1f} d  band {base['coverage_p10_p90']:6.1%}"
              f"   | oracle: {(part['oracle_error'].abs() <= WITHIN_DAYS).mean():6.1%}")

    for seed, part in rows.groupby("seed"):
        line(f"seed {seed}, all", part)
    line("all seeds", rows)
    for (overdue, run), part in rows.groupby(["overdue", "run"]):
        line(f"{'overdue' if overdue else 'not yet due'}, {run}", part)
    for terms, part in rows.groupby("terms"):
        line(f"terms {terms:.0f} days", part)
    od = rows[rows["overdue"] & (rows["run"] != RUN_NAMES[cash.RUN_NONE])]
    if len(od):
        print(f"  overdue invoices of run payers: {od['paid_at_next_run'].mean():.1%} paid at the next run; "
              f"predicted at the next run for {od['predicted_next_run'].mean():.1%}, right for "
              f"{(od['predicted_next_run'] & od['paid_at_next_run']).sum() / max(od['paid_at_next_run'].sum(), 1):.1%}"
              " of those paid there")
    print(f"  targets: within 3 d >= 60 %, p10-p90 coverage 0.80 +- 0.03; load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 202, 303])
    parser.add_argument("--customers", type=int, default=500)  # as benchmarks/late_payment_quality.py
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--before", type=int, default=91, help="as-of: this many days before the last day")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = pd.concat([one_seed(s, args.customers, args.years, args.before, work) for s in args.seeds],
                         ignore_index=True)
        if args.keep:
            rows.to_csv(work / "pay_dates.csv", index=False)
    print(f"Pay dates of invoices open at as-of and paid later ({', '.join(map(str, args.seeds))}):")
    report(rows)


if __name__ == "__main__":
    main()
