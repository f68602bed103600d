"""Model tests of the pay dates: run payers paid at their runs, a calibrated band, an honest never-paid share."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from features import cash
from features.contract import Inv
from features.invoices import FEATURES
from training.payment_timing import (
    LOST,
    PaymentTimingConfig,
    _fitted,
    build_payment_timing,
    run_kind,
    write_off_labels,
)


def _weekly_runs_after(x: pd.DataFrame, s: np.ndarray) -> np.ndarray:
    """A weekly payer's first run day (days after due) after day ``s``: run days are -w modulo 7."""
    w = x["days_after_run_weekday"].to_numpy(float)
    return 7 * np.floor((s + w) / 7) + 7 - w


def test_a_run_payers_overdue_invoice_is_most_likely_paid_at_its_next_run(fitted):
    x = fitted["holdout"]
    overdue = x[(run_kind(x) == cash.RUN_WEEKLY) & (x["days_to_due"] < 0) & (x["days_to_due"] >= -30)]
    assert len(overdue) >= 20
    timing = fitted["timing"]
    nxt = _weekly_runs_after(overdue, -overdue["days_to_due"].to_numpy(float))
    p10, point, p90 = timing.pay_days(overdue).T
    assert np.mean(point == nxt) >= 0.55  # for most, the most likely day is the next run (the rest pay much later)
    assert (p10 <= point).all() and (point <= p90).all()
    # the next run holds more of the mass than any later one: draws land there far more often than a week later
    draws = timing.sample(overdue, 400, np.random.default_rng(0))
    at_next, week_later = (draws == nxt[:, None]).mean(axis=1), (draws == nxt[:, None] + 7).mean(axis=1)
    assert at_next.mean() >= 0.4 and at_next.mean() > 1.4 * week_later.mean()
    # every draw of a weekly payer falls on its run day, none before the next run
    w = overdue["days_after_run_weekday"].to_numpy(float)[:, None]
    finite = np.isfinite(draws)
    assert (np.mod(draws[finite].reshape(-1) + np.broadcast_to(w, draws.shape)[finite], 7) == 0).all()
    assert (draws >= nxt[:, None]).all()


def test_an_invoice_not_yet_due_of_a_weekly_payer_is_expected_on_a_run_day(fitted):
    x = fitted["holdout"]
    soon = x[(run_kind(x) == cash.RUN_WEEKLY) & (x["days_to_due"] >= 0)].head(200)
    point = fitted["timing"].pay_days(soon)[:, 1]
    finite = np.isfinite(point)
    assert finite.mean() > 0.9
    assert (np.mod(point[finite] + soon["days_after_run_weekday"].to_numpy(float)[finite], 7) == 0).all()


def test_a_customer_without_a_run_is_expected_on_a_business_day(fitted):
    x = fitted["holdout"]
    ad_hoc = x[run_kind(x) == cash.RUN_NONE].head(300)
    assert len(ad_hoc) >= 50 and fitted["timing"].business_days_  # the generated ledger has no weekend receipts
    weekday = pd.DatetimeIndex(ad_hoc[Inv.DUE]).day_of_week.to_numpy()[:, None]
    days = np.column_stack([fitted["timing"].pay_days(ad_hoc),
                            fitted["timing"].sample(ad_hoc, 50, np.random.default_rng(0))])
    finite = np.isfinite(days)
    assert finite.mean() > 0.9
    assert (np.mod(np.broadcast_to(weekday, days.shape)[finite] + days[finite], 7) < 5).all()
    assert (days[finite] > np.broadcast_to(-ad_hoc["days_to_due"].to_numpy()[:, None], days.shape)[finite]).all()


def test_weekend_receipts_keep_a_customer_without_a_run_on_every_day(fitted):
    x = fitted["holdout"]
    settled = x[(run_kind(x) == cash.RUN_NONE) & ~x["censored"]]
    timing, delay = fitted["timing"], settled["delay"].to_numpy(float)
    assert timing._pays_on_business_days(settled, delay, np.zeros(len(settled), bool))
    weekday = pd.DatetimeIndex(settled[Inv.DUE]).day_of_week.to_numpy()
    on_sunday = delay + (6 - np.mod(weekday + delay, 7))  # every payment moved to the Sunday of its week
    assert not timing._pays_on_business_days(settled, on_sunday, np.zeros(len(settled), bool))


def test_the_band_is_calibrated_on_a_later_slice_and_beats_the_baseline(fitted):
    from training.invoice_families import pay_date_figures
    from training.payment_timing import average_delay_baseline

    settled = fitted["holdout"][~fitted["holdout"]["censored"]]
    actual = settled["delay"].to_numpy()
    ours = pay_date_figures(actual, *fitted["timing"].pay_days(settled).T)
    base = pay_date_figures(actual, *average_delay_baseline(settled))
    assert 0.7 <= ours["coverage_p10_p90"] <= 0.9
    assert ours["within_3d"] > base["within_3d"] and ours["mae_days"] < base["mae_days"]
    assert fitted["timing"].band_ is not None and fitted["timing"].levels_ is not None


def test_write_off_labels_read_the_ledger_as_known_at_the_date(small_loaded, fitted):
    from training.examples import ExampleConfig, examples

    origin = fitted["origin"]  # weekly snapshots: the fixture's three-weekly ones may hold no invoice written off
    train = examples(small_loaded, origin, ExampleConfig(every_days=7), workers=1)
    lost = write_off_labels(small_loaded, origin, train)
    inv = small_loaded[Inv.TABLE].set_index(Inv.ID).reindex(train[Inv.ID])
    paid_in_full = (inv[Inv.PAID] <= origin).to_numpy() & (inv[Inv.PAID_AMOUNT] >= inv[Inv.AMOUNT] - 0.01).to_numpy()
    assert (lost[paid_in_full] == 0).all()
    unknown = train["censored"].to_numpy() & ((origin - train[Inv.DUE]).dt.days < 180).to_numpy()
    assert np.isnan(lost[unknown]).all()
    assert np.nanmax(lost) > 0.5  # the generator writes invoices off


def test_never_paid_is_learned_from_write_offs_and_short_payments(small_loaded, fitted):
    train = fitted["train"]
    train = train.assign(**{LOST: write_off_labels(small_loaded, fitted["origin"], train)})
    timing = build_payment_timing(PaymentTimingConfig(n_estimators=60)).fit(
        train, train["delay"].to_numpy(), train["censored"].to_numpy())
    x = fitted["holdout"]
    never = timing.never_paid(x)
    assert never.shape == (len(x),) and ((never >= 0) & (never <= 1)).all()
    assert 0 < never.mean() < 0.1
    disputed = (x["disputed"] > 0).to_numpy()  # a disputed invoice is the one short-paid
    assert disputed.any() and never[disputed].mean() > 2 * never[~disputed].mean()
    # without write-off labels it falls back on the mass beyond the horizon, as before
    assert fitted["timing"].never_paid(x).shape == (len(x),)


def test_an_empty_set_of_rows_has_no_pay_days(fitted):
    assert fitted["timing"].pay_days(fitted["holdout"].iloc[:0]).shape == (0, 3)


@pytest.mark.parametrize("column", ["run_weekday_share", "run_monthday_share"])
def test_a_customer_without_a_run_is_not_snapped(fitted, column):
    x = fitted["holdout"].head(100).assign(run_weekday_share=0.1, run_monthday_share=0.1)
    assert (run_kind(x) == cash.RUN_NONE).all()
    assert (run_kind(x.assign(**{column: 0.95})) != cash.RUN_NONE).any()


def _drifting_customer(future: bool) -> pd.DataFrame:
    """Customer 007 paid a year ago within a day of due, lately 20 days after it; I20 is open at 2025-02-20.
    With ``future``: I20 paid after that date and an invoice issued after it, both early."""
    due = [pd.Timestamp("2024-01-05") + pd.Timedelta(days=7 * i) for i in range(12)]
    due += [pd.Timestamp("2024-11-29") + pd.Timedelta(days=7 * i) for i in range(8)]
    paid = [d + pd.Timedelta(days=(-1) ** i) for i, d in enumerate(due[:12])] + [d + pd.Timedelta(days=20)
                                                                                  for d in due[12:]]
    due.append(pd.Timestamp("2025-03-10"))
    paid.append(pd.Timestamp("2025-02-21") if future else None)
    if future:
        due.append(pd.Timestamp("2025-03-20"))
        paid.append(pd.Timestamp("2025-02-24"))
    return pd.DataFrame({
        "invoice_id": [f"I{i}" for i in range(len(due))], "customer_id": "007",
        "issue_date": [f"{d - pd.Timedelta(days=30):%Y-%m-%d}" for d in due[:21]]
        + ([f"{pd.Timestamp('2025-02-22'):%Y-%m-%d}"] if future else []),
        "due_date": [f"{d:%Y-%m-%d}" for d in due], "amount": "100",
        "paid_date": ["" if p is None else f"{p:%Y-%m-%d}" for p in paid]})


def test_the_recent_delay_follows_a_customers_change_and_not_the_future(tmp_path):
    from features.invoices import invoice_features
    from features.load import validate
    from tests.conftest import TODAY, tiny_customers, write_tables

    def row(future: bool) -> pd.Series:
        folder = write_tables(tmp_path / str(future), customers=tiny_customers(), invoices=_drifting_customer(future))
        x = invoice_features(validate(folder, today=TODAY).company, "2025-02-20")
        return x.set_index(Inv.ID).loc["I20"]

    now = row(False)
    # the mean over all history sits midway between the old habit (0) and the new one (20); the recent record
    # leans to the new one, shrunk toward the long run by the few payments behind it
    assert now["expected_delay"] < 10 and now["expected_delay_recent"] > now["expected_delay"] + 4
    assert now["recent_delay_spread"] < 0.85 * now["delay_std"]  # lately it pays steadily, unlike over all history
    later = row(True)  # a payment and an invoice after the date change nothing known at it
    for column in ("expected_delay_recent", "recent_delay_spread", "expected_delay", "delay_std"):
        assert later[column] == now[column]


def test_a_fits_own_scores_of_its_rows_are_its_predictions():
    """``_fitted`` hands back LightGBM's scores of the training rows instead of predicting them again: the same
    numbers, missing values and bagging included."""
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(3000, 6)), columns=[f"f{i}" for i in range(6)])
    x.iloc[rng.random(3000) < 0.1, 2] = np.nan
    y = 5 * x["f0"].fillna(0).to_numpy() + rng.normal(size=3000)
    model = build_payment_timing(PaymentTimingConfig(n_estimators=30, min_child_samples=20))
    for objective, target in (("huber", y), ("cross_entropy", (y > 2).astype(float))):
        regressor, scores = _fitted(model._regressor(objective), x, target)
        assert np.array_equal(scores, regressor.predict(x))


def test_nothing_censored_is_one_fit_of_the_main_shape():
    """With no censored row there is nothing to impute: the centre is the plain fit the refit would repeat."""
    rng = np.random.default_rng(4)
    x = pd.DataFrame(rng.normal(size=(2000, len(FEATURES))), columns=list(FEATURES))
    x["recent_delay_spread"] = 5.0
    delay = np.round(3 * x[FEATURES[0]].to_numpy() + rng.normal(size=2000))
    model = build_payment_timing(PaymentTimingConfig(n_estimators=20, min_child_samples=20))
    model.features_, model.scale_column_ = list(FEATURES), "recent_delay_spread"
    model._fit_centre(x, delay, np.zeros(2000, bool))
    plain = model._regressor().fit(x[list(FEATURES)], delay)
    assert model.regressor_.booster_.model_to_string() == plain.booster_.model_to_string()
    assert len(model.values_) > 0 and model.cdf_[-1] == pytest.approx(1.0)


def test_the_residuals_slice_table_is_found_once_and_not_pickled(fitted):
    """The slice table of the residuals' CDF is kept after the first call (a single invoice's call found it anew
    each time), left out of the pickle, and the answers are the same either way."""
    import pickle

    timing, rows = copy.copy(fitted["timing"]), fitted["holdout"].head(20)
    timing.__dict__.pop("_starts", None)
    first = timing.pay_summary(rows)
    kept = timing.__dict__["_starts"][1]
    assert timing.__dict__["_starts"][0] is timing.cdf_
    assert timing._cdf_slices() is kept
    back = pickle.loads(pickle.dumps(timing))
    assert "_starts" not in back.__dict__
    for a, b in zip(first, back.pay_summary(rows)):
        np.testing.assert_array_equal(a, b)
