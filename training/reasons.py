"""Reasons: each invoice's strongest SHAP contributions as sentences a credit controller reads.

Each sentence names the fact, its value and its direction, e.g.
"customer paid 6 of its last 10 invoices late (raises risk)".
"""

from __future__ import annotations

import calendar

import numpy as np
import pandas as pd


def _money(v: float) -> str:
    return f"{v:,.0f}"


def _days(v: float) -> str:
    v = int(round(v))
    return f"{v} day" if abs(v) == 1 else f"{v} days"


def _yes(flag: float, yes: str, no: str) -> str:
    return yes if flag >= 0.5 else no


# feature -> function(row) -> the fact, without direction. Rows carry every feature column.
TEMPLATES = {
    "amount": lambda r: f"invoice amount is {_money(r['amount'])}",
    "amount_vs_typical": lambda r: f"invoice is {r['amount_vs_typical']:.1f}x the customer's typical amount",
    "terms_days": lambda r: f"payment terms are {_days(r['terms_days'])}",
    "days_to_due": lambda r: (f"invoice is due in {_days(r['days_to_due'])}" if r["days_to_due"] >= 0
                              else f"invoice is {_days(-r['days_to_due'])} past due"),
    "age_days": lambda r: f"invoice was issued {_days(r['age_days'])} ago",
    "paper": lambda r: ("delivery channel is unknown" if pd.isna(r["paper"])
                        else _yes(r["paper"], "invoice was sent on paper", "invoice was sent electronically")),
    "disputed": lambda r: _yes(r["disputed"], "invoice is disputed", "invoice is not disputed"),
    "due_month_end": lambda r: _yes(r["due_month_end"], "invoice falls due at a month-end",
                                    "invoice does not fall due at a month-end"),
    "due_quarter_end": lambda r: _yes(r["due_quarter_end"], "invoice falls due at a quarter-end",
                                      "invoice does not fall due at a quarter-end"),
    "due_month": lambda r: f"invoice falls due in {calendar.month_name[int(r['due_month'])]}",
    "n_settled": lambda r: (f"customer has only {int(r['n_settled'])} invoices of history"
                            if r["n_settled"] < 10 else f"customer has {int(r['n_settled'])} invoices of history"),
    "late_share": lambda r: f"customer paid {r['late_share']:.0%} of its invoices late",
    "late_last_n": lambda r: (f"customer paid {int(r['late_last_n'])} of its last {int(r['n_last_n'])} "
                              "invoices late"),
    "n_last_n": lambda r: f"customer's recent record covers {int(r['n_last_n'])} invoices",
    "late_share_recent_weighted": lambda r: f"customer paid {r['late_share_recent_weighted']:.0%} of its "
                                            "recent invoices late",
    "mean_delay": lambda r: (f"customer pays on average {_days(abs(r['mean_delay']))} "
                             + ("after" if r["mean_delay"] >= 0 else "before") + " the due date"),
    "mean_delay_undisputed": lambda r: (f"on undisputed invoices the customer pays on average "
                                        f"{_days(abs(r['mean_delay_undisputed']))} "
                                        + ("after" if r["mean_delay_undisputed"] >= 0 else "before") + " due"),
    "delay_margin": lambda r: (f"the customer's usual payment day is {abs(r['delay_margin']):.1f} spreads "
                               + ("after" if r["delay_margin"] >= 0 else "before") + " the due date"),
    "expected_delay": lambda r: (f"for an invoice like this the customer usually pays "
                                 f"{_days(abs(r['expected_delay']))} "
                                 + ("after" if r["expected_delay"] >= 0 else "before") + " the due date"),
    "mean_days_late": lambda r: f"customer's payments average {_days(r['mean_days_late'])} late",
    "dispute_rate": lambda r: f"customer disputed {r['dispute_rate']:.0%} of its invoices",
    "p75_delay": lambda r: f"a quarter of the customer's payments come {_days(r['p75_delay'])} or more after due",
    "p90_delay": lambda r: f"the customer's slowest tenth of payments come {_days(r['p90_delay'])} or more after due",
    "delay_std": lambda r: f"customer's payment days vary by about {_days(r['delay_std'])}",
    "delay_trend": lambda r: (f"customer has paid {_days(abs(r['delay_trend']))} "
                              + ("later" if r["delay_trend"] >= 0 else "earlier") + " in the last 90 days than before"),
    "days_since_last_late": lambda r: f"customer's last late payment was {_days(r['days_since_last_late'])} ago",
    "open_amount": lambda r: f"customer owes {_money(r['open_amount'])} in open invoices",
    "overdue_amount": lambda r: f"customer has {_money(r['overdue_amount'])} overdue",
    "n_overdue_open": lambda r: f"customer has {int(r['n_overdue_open'])} invoices overdue and unpaid",
    "max_days_overdue_open": lambda r: (f"customer's oldest unpaid invoice is {_days(r['max_days_overdue_open'])} "
                                        "past due" if r["max_days_overdue_open"] > 0
                                        else "customer has no unpaid invoice past due"),
    "prior_late_share": lambda r: f"similar customers (industry, country) pay {r['prior_late_share']:.0%} late",
    "prior_mean_delay": lambda r: f"similar customers pay on average {_days(r['prior_mean_delay'])} after due",
    "run_weekday_share": lambda r: f"{r['run_weekday_share']:.0%} of the customer's payments fall on one weekday",
    "days_after_run_weekday": lambda r: f"due date is {_days(r['days_after_run_weekday'])} after the customer's "
                                        "usual weekly payment day",
    "run_monthday_share": lambda r: f"{r['run_monthday_share']:.0%} of the customer's payments fall on one day "
                                    "of the month",
    "days_after_run_monthday": lambda r: f"due date is {_days(r['days_after_run_monthday'])} after the customer's "
                                         "usual monthly payment day",
    "order_momentum": lambda r: f"customer's orders changed {np.expm1(r['order_momentum']):+.0%} over the last 90 days",
    "order_lead_days": lambda r: f"order took {_days(r['order_lead_days'])} to invoice",
}


def sentence(feature: str, row: pd.Series, contribution: float) -> str:
    fact = TEMPLATES[feature](row) if not pd.isna(row.get(feature, 0)) or feature == "paper" else \
        f"{feature.replace('_', ' ')} is unknown"
    return f"{fact} ({'raises' if contribution > 0 else 'lowers'} risk)"


def top_reasons(x: pd.DataFrame, contributions: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """The ``k`` largest contributions of each row as sentences (columns reason_1..reason_k)."""
    values = contributions.to_numpy()
    order = np.argsort(-np.abs(values), axis=1)[:, :k]
    names = np.asarray(contributions.columns)
    records = x.to_dict("records")
    out = []
    for i, row in enumerate(records):
        out.append([sentence(names[j], row, values[i, j]) for j in order[i]])
    return pd.DataFrame(out, columns=[f"reason_{j + 1}" for j in range(k)], index=x.index)
