"""Point-in-time invoice features and labels."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import Inv
from features.invoices import FEATURES, FeatureConfig, invoice_features, label
from features.load import Company, validate
from tests.conftest import TODAY, tiny_customers, write_tables


def _with_future(company: Company, date: pd.Timestamp) -> Company:
    """Pay every invoice open at ``date`` the day after, and add invoices issued after it."""
    inv = company[Inv.TABLE].copy()
    open_ = inv[Inv.PAID].isna() | (inv[Inv.PAID] > date)
    inv.loc[open_, Inv.PAID] = date + pd.Timedelta(days=1)
    inv.loc[open_, Inv.PAID_AMOUNT] = inv.loc[open_, Inv.AMOUNT]
    undisputed = open_ & (inv[Inv.DISPUTE].isna() | (inv[Inv.DISPUTE] > date))
    inv.loc[undisputed, Inv.DISPUTE] = date + pd.Timedelta(days=2)
    new = inv.head(50).copy()
    new[Inv.ID] = "F" + new[Inv.ID]
    new[Inv.ISSUE] = date + pd.Timedelta(days=3)
    new[Inv.DUE] = date + pd.Timedelta(days=20)
    new[Inv.PAID] = date + pd.Timedelta(days=25)
    return company.replace(invoices=pd.concat([inv, new], ignore_index=True))


def test_future_payments_disputes_and_invoices_change_no_feature(small_loaded):
    date = pd.Timestamp("2025-02-14")
    before = invoice_features(small_loaded, date)
    after = invoice_features(_with_future(small_loaded, date), date)
    assert len(before) > 20
    pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True))


def test_features_have_no_gaps(small_loaded):
    x = invoice_features(small_loaded, "2025-03-31")
    assert not x[[f for f in FEATURES if f != "paper"]].isna().any().any()


def test_a_new_customer_reads_as_its_peers_not_as_never_late(tmp_path):
    # Customer 007 has a late record; 008 has no history at all.
    inv = _history([5, 9, 12, None])
    inv.loc[3, "customer_id"] = "008"
    company = validate(write_tables(tmp_path, customers=tiny_customers(), invoices=inv), today=TODAY).company
    row = invoice_features(company, "2025-02-20").set_index(Inv.ID).loc["I3"]
    assert row["n_settled"] == 0
    assert row["late_share"] == row["prior_late_share"] == 1.0
    assert row["mean_delay"] == row["prior_mean_delay"] > 0


def _history(paid_offsets: list[int | None], due: str = "2025-01-31") -> pd.DataFrame:
    rows = []
    for i, off in enumerate(paid_offsets):
        due_d = pd.Timestamp(due) + pd.Timedelta(days=7 * i)
        rows.append({"invoice_id": f"I{i}", "customer_id": "007",
                     "issue_date": f"{due_d - pd.Timedelta(days=30):%Y-%m-%d}",
                     "due_date": f"{due_d:%Y-%m-%d}", "amount": "100",
                     "paid_date": "" if off is None else f"{due_d + pd.Timedelta(days=off):%Y-%m-%d}"})
    return pd.DataFrame(rows)


def test_open_overdue_invoices_count_as_late_history(tmp_path):
    # Two paid on time, one open 6 days past due at the as-of date, one not yet due.
    inv = _history([-1, 0, None, None])
    company = validate(write_tables(tmp_path, customers=tiny_customers(), invoices=inv), today=TODAY).company
    x = invoice_features(company, "2025-02-20").set_index(Inv.ID)
    row = x.loc["I3"]
    assert row["n_overdue_open"] == 1 and row["max_days_overdue_open"] == 6
    assert row["late_last_n"] == 1 and row["n_last_n"] == 3


def test_labels_and_censoring(tmp_path):
    inv = _history([-2, 0, 3, None, None])  # due 01-31, 02-07, 02-14, 02-21, 02-28
    company = validate(write_tables(tmp_path, customers=tiny_customers(), invoices=inv), today=TODAY).company
    x = invoice_features(company, "2025-01-20", invoices=company[Inv.TABLE])
    y = label(x, company, pd.Timestamp("2025-02-25")).set_index(x[Inv.ID])
    assert y.loc["I0", "late"] == 0 and y.loc["I1", "late"] == 0  # paid early / on the due date
    assert y.loc["I2", "late"] == 1 and y.loc["I2", "delay"] == 3 and not y.loc["I2", "censored"]
    assert y.loc["I3", "late"] == 1 and y.loc["I3", "censored"] and y.loc["I3", "delay"] == 4  # open past due
    assert np.isnan(y.loc["I4", "late"]) and y.loc["I4", "censored"]  # not yet due: undecided
    # The payment after the label date is not seen: I2 is then open and 3 days late... unless grace.
    graced = label(x, company, pd.Timestamp("2025-02-25"), FeatureConfig(grace_days=5)).set_index(x[Inv.ID])
    assert graced.loc["I2", "late"] == 0 and np.isnan(graced.loc["I3", "late"])


def test_every_feature_is_declared_once_with_words_for_its_reason(small_loaded):
    from features.invoices import BY_NAME, CATALOG
    from training.late_payment import MONOTONE

    assert FEATURES == [f.name for f in CATALOG] and len(set(FEATURES)) == len(FEATURES) == len(BY_NAME)
    assert MONOTONE == {f.name: f.direction for f in CATALOG if f.direction}
    x = invoice_features(small_loaded, "2025-03-31")
    missing = [f for f in FEATURES if f not in x.columns]
    assert not missing, f"declared but never computed: {missing}"
    for row in x.head(50).to_dict("records"):
        for feature in CATALOG:
            assert feature.fact, f"{feature.name} has no reason template"
            words = feature.words(row)
            assert words and "{" not in words and "nan" not in words, (feature.name, words)
    for feature in CATALOG:
        if feature.compare is not None:
            assert feature.compare.column in x.columns, feature.name
        assert feature.direction in (-1, 0, 1) and feature.sense in (-1, 0, 1)


def test_due_dates_read_naturally():
    from features.invoices import BY_NAME

    due = BY_NAME["days_to_due"]
    assert [due.words({"days_to_due": d}) for d in (0, 1, 3, -1, -3)] == [
        "invoice is due today", "invoice is due tomorrow", "invoice is due in 3 days", "invoice is 1 day past due",
        "invoice is 3 days past due"]
    run = BY_NAME["days_after_run_weekday"]
    assert run.words({"days_after_run_weekday": 0}) == "due date is on the customer's usual weekly payment day"
    assert run.words({"days_after_run_weekday": 3}) == ("due date is 3 days after the customer's usual weekly "
                                                        "payment day")


def test_find_gives_the_kept_index_s_positions_for_a_few_ids_and_for_many():
    from features.invoices import FEW_LOOKUPS, _find

    keys = pd.Series([f"I{i:05d}" for i in range(5000)], dtype="string")
    rng = np.random.default_rng(5)
    picked = rng.choice(np.r_[keys.to_numpy(object), ["NOPE", "I99999"]], 3 * FEW_LOOKUPS).astype(object)
    picked[::97] = None
    unknown = pd.Series([f"X{i}" for i in range(2 * FEW_LOOKUPS)], dtype="string")  # none of them is a key
    for lookups in (pd.Series(picked, dtype="string"), pd.Series(picked, dtype=object), pd.Series(picked[:5]), unknown):
        expected = pd.Index(keys.astype(object)).get_indexer(lookups.astype(object))
        assert np.array_equal(_find(keys, lambda: pd.Index(keys.astype(object)), lookups.astype(object)), expected)
        assert len(lookups) <= FEW_LOOKUPS or (expected == -1).any()
