"""Model behaviour: calibration inputs, monotone risk, timing distribution, reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import Inv
from features.invoices import FEATURES
from features.load import validate
from tests.conftest import TODAY, write_tables
from training.payment_timing import kaplan_meier
from training.pipeline import score
from training.scoring import SCORE_COLUMNS, score_features


def test_more_days_overdue_never_lowers_risk(fitted):
    rows = fitted["holdout"][FEATURES + [Inv.ID, Inv.CUSTOMER, Inv.DUE, "days_overdue", "amount_open"]].head(200)
    previous = None
    for days_to_due in range(40, -61, -5):
        p = fitted["late"].predict_proba(rows.assign(days_to_due=float(days_to_due)))
        if previous is not None:
            assert (p >= previous - 1e-12).all(), days_to_due
        previous = p
    assert (previous == 1.0).all()  # past due is late


def test_a_punctual_customer_scores_below_a_late_one(fitted, tmp_path):
    customers = [{"customer_id": "GOOD", "industry": "retail"}, {"customer_id": "BAD", "industry": "retail"}]
    rows = []
    for cust, offset in (("GOOD", -2), ("BAD", 15)):
        for i in range(30):
            due = pd.Timestamp("2024-03-01") + pd.Timedelta(days=10 * i)
            rows.append({"invoice_id": f"{cust}{i}", "customer_id": cust,
                         "issue_date": f"{due - pd.Timedelta(days=30):%Y-%m-%d}",
                         "due_date": f"{due:%Y-%m-%d}", "amount": "1000", "delivery": "electronic",
                         "paid_date": f"{due + pd.Timedelta(days=offset):%Y-%m-%d}"})
        rows.append({"invoice_id": f"{cust}-open", "customer_id": cust, "issue_date": "2025-01-20",
                     "due_date": "2025-02-19", "amount": "1000", "delivery": "electronic", "paid_date": ""})
    company = validate(write_tables(tmp_path, customers=customers, invoices=rows), today=TODAY).company
    scored = score(company, "2025-02-01", models=(fitted["late"], fitted["timing"])).set_index("customer_id")
    assert scored.loc["GOOD", "p_late"] < scored.loc["BAD", "p_late"]
    assert scored.loc["GOOD", "predicted_pay_date"] < scored.loc["BAD", "predicted_pay_date"]


def test_score_rows_have_contract_columns_and_readable_reasons(fitted, small_loaded):
    scored = score(small_loaded, fitted["at"], models=(fitted["late"], fitted["timing"]))
    assert list(scored.columns) == SCORE_COLUMNS
    assert len(scored) == small_loaded[Inv.TABLE][Inv.PAID].isna().sum()
    assert scored["p_late"].between(0, 1).all()
    assert scored["reason_1"].str.match(r"^[a-z0-9\"'% ,.x+-]+ \((raises|lowers) risk\)$").all()
    assert not scored[["reason_1", "reason_2", "reason_3"]].apply(lambda c: c.str.contains("_")).any().any()
    assert (scored["reason_1"] != scored["reason_2"]).all() and (scored["reason_2"] != scored["reason_3"]).all()
    ordered = scored.dropna(subset=["pay_date_p90"])
    assert (ordered["pay_date_p10"] <= ordered["predicted_pay_date"]).all()
    assert (ordered["predicted_pay_date"] <= ordered["pay_date_p90"]).all()
    assert (scored["predicted_pay_date"].dropna() > fitted["at"]).all()  # open invoices are paid later


def test_future_facts_change_no_score(fitted, small_loaded):
    date = pd.Timestamp("2025-02-14")
    inv = small_loaded[Inv.TABLE].copy()
    later = inv[Inv.PAID].isna() | (inv[Inv.PAID] > date)
    inv.loc[later, Inv.PAID] = date + pd.Timedelta(days=1)
    future = small_loaded.replace(invoices=inv)
    models = (fitted["late"], fitted["timing"])
    pd.testing.assert_frame_equal(score(small_loaded, date, models=models), score(future, date, models=models))


def test_lightgbm_contributions_equal_shap_tree_explainer(fitted):
    import shap

    x = fitted["holdout"][FEATURES].head(20)
    ours = fitted["late"].contributions(x).to_numpy()
    theirs = shap.TreeExplainer(fitted["late"].trees).shap_values(x)
    theirs = theirs[1] if isinstance(theirs, list) else theirs
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_tree_shap_by_decision_pattern_equals_lightgbm_pred_contrib(fitted):
    from training.late_payment import tree_shap

    booster = fitted["late"].trees
    rows = fitted["holdout"][FEATURES].head(300).to_numpy(float).copy()
    rows[::7, :5] = np.nan  # missing values take each split's missing side
    rows[1::7, 5:10] = 0.0
    ours = tree_shap(booster, rows)
    theirs = booster.predict(rows, pred_contrib=True)[:, :-1]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours == 0, theirs == 0)
    np.testing.assert_array_equal(np.argsort(-np.abs(ours), axis=1, kind="stable"),
                                  np.argsort(-np.abs(theirs), axis=1, kind="stable"))


def test_tree_shap_of_a_few_rows_is_lightgbms_own():
    """Below ``NATIVE_SHAP_BELOW`` rows (a single invoice's call) the values are ``pred_contrib``'s, bit for bit,
    and at the threshold the decision patterns' agree with them."""
    import lightgbm as lgb

    from training.late_payment import NATIVE_SHAP_BELOW, tree_shap

    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 6))
    y = (x[:, 0] + 0.5 * x[:, 1] * x[:, 2] + rng.normal(size=2000) > 0).astype(int)
    booster = lgb.LGBMClassifier(n_estimators=30, num_leaves=7, verbose=-1, n_jobs=1).fit(x, y).booster_
    few = x[:3].copy()
    few[1, 0] = np.nan
    np.testing.assert_array_equal(tree_shap(booster, few), booster.predict(few, pred_contrib=True)[:, :-1])
    at = x[:NATIVE_SHAP_BELOW]
    np.testing.assert_allclose(tree_shap(booster, at), booster.predict(at, pred_contrib=True)[:, :-1],
                               rtol=0, atol=1e-12)


def test_decision_patterns_are_counted_as_np_unique_finds_them():
    """Few splits count their patterns in an array, many sort them: both give ``np.unique``'s kinds and inverse."""
    from training.late_payment import _kinds

    rng = np.random.default_rng(0)
    for bits in (1, 6, 16, 17, 30):
        pattern = rng.integers(0, 1 << bits, 5000) & rng.choice([0, (1 << bits) - 1], 5000)  # repeats, and 0
        kinds, inverse = _kinds(pattern, bits)
        want_kinds, want_inverse = np.unique(pattern, return_inverse=True)
        np.testing.assert_array_equal(kinds, want_kinds)
        np.testing.assert_array_equal(inverse, want_inverse)


def test_pay_summary_gives_what_its_parts_give(fitted):
    timing, x = fitted["timing"], fitted["holdout"].head(300)
    levels = (np.arange(200) + 0.5) / 200
    pay, expected, delays = timing.pay_summary(x, qs=levels)
    np.testing.assert_array_equal(pay, timing.pay_days(x))
    np.testing.assert_array_equal(expected, timing.expected_days_late(x))
    np.testing.assert_array_equal(delays, timing.quantiles(x, qs=levels))


def test_kaplan_meier_matches_hand_computation():
    values = np.array([1.0, 2.0, 2.0, 3.0, 4.0])
    event = np.array([True, True, False, True, False])
    v, cdf = kaplan_meier(values, event)
    # S: after 1: 4/5; after 2 (event before the censoring at 2): 4/5*3/4 = 3/5; after 3: 3/5*1/2 = 3/10.
    np.testing.assert_allclose(v, [1, 2, 3])
    np.testing.assert_allclose(cdf, [0.2, 0.4, 0.7])


def test_timing_distribution_is_conditional_and_ordered(fitted):
    x = fitted["holdout"].head(300)
    q = fitted["timing"].quantiles(x)
    finite = np.isfinite(q).all(axis=1)
    assert (q[finite, 0] <= q[finite, 1]).all() and (q[finite, 1] <= q[finite, 2]).all()
    floor = -x["days_to_due"].to_numpy() + 1
    draws = fitted["timing"].sample(x, 50, np.random.default_rng(0))
    assert (draws >= floor[:, None]).all()
    # Conditioning: the later an invoice is still unpaid, the later its median payment.
    one = x.head(1)
    medians = [fitted["timing"].quantiles(one, (0.5,), paid_after=np.array([d]))[0, 0] for d in (0, 20, 60)]
    assert medians[0] <= medians[1] <= medians[2] and medians[2] >= 61


def test_censored_invoices_move_the_timing_model_later(fitted):
    from training.payment_timing import build_payment_timing

    train = fitted["train"]
    dropped = train[~train["censored"]]
    naive = build_payment_timing().fit(dropped, dropped["delay"].to_numpy(), dropped["censored"].to_numpy())
    x = fitted["holdout"].head(500)
    assert np.nanmean(np.where(np.isinf(q := fitted["timing"].quantiles(x)), np.nan, q)[:, 1]) >= \
        np.nanmean(naive.quantiles(x)[:, 1])


def test_score_features_of_nothing_is_empty(fitted):
    assert list(score_features(fitted["holdout"].iloc[:0], fitted["late"], fitted["timing"]).columns) == SCORE_COLUMNS


@pytest.mark.parametrize("bad", ["2025-13-45", "yesterday"])
def test_cli_rejects_a_bad_as_of(bad, small_company):
    from typer.testing import CliRunner

    from serving.cli import app

    result = CliRunner().invoke(app, ["score", str(small_company), "--out", "x.csv", "--as-of", bad])
    assert result.exit_code == 2


def test_weekly_new_invoices_scores_each_week_with_history_known_then(small_loaded):
    from training.evaluate import weekly_new_invoices
    from training.examples import ExampleConfig

    table, scored = weekly_new_invoices(small_loaded, "2025-01-31", "2025-02-01", "2025-03-31",
                                        ex=ExampleConfig(every_days=21))
    assert set(table.index) == {"lightgbm", "customer_late_share", "logistic_regression"}
    assert table.loc["lightgbm", "auc"] > 0.5
    issued = scored[Inv.ISSUE]
    assert (issued >= "2025-02-01").all() and (issued <= scored["as_of"]).all()
    assert ((scored["as_of"] - issued).dt.days < 7).all()
    assert scored["late"].isin([0.0, 1.0]).all()


def test_the_shape_that_ranks_the_calibration_slice_better_is_kept(fitted):
    from sklearn.metrics import roc_auc_score

    from training.examples import not_yet_due
    from training.late_payment import LatePaymentConfig, build_late_payment, time_slices

    tr = not_yet_due(fitted["train"])
    fit, cal = time_slices(tr, 0.25)
    model = build_late_payment(LatePaymentConfig(refit_on_all=False)).fit(fit, fit["late"].to_numpy(), cal,
                                                                         cal["late"].to_numpy())
    assert set(model.shape_auc_) == set(LatePaymentConfig().shapes()) and len(model.shape_auc_) == 2
    main, small = LatePaymentConfig().shapes()
    expected = small if model.shape_auc_[small] > model.shape_auc_[main] + 1e-3 else main
    assert model.shape_ == expected
    kept_auc = roc_auc_score(cal["late"], model.raw_proba(cal))
    assert kept_auc == pytest.approx(model.shape_auc_[expected])
    only = build_late_payment(LatePaymentConfig(small_data_shape=None)).fit(fit, fit["late"].to_numpy(), cal,
                                                                            cal["late"].to_numpy())
    assert only.shape_ == main and only.shape_auc_ == {}


def test_the_kept_trees_are_refitted_on_both_slices_and_the_calibration_kept(fitted):
    from training.examples import not_yet_due
    from training.late_payment import LatePaymentConfig, build_late_payment, time_slices

    tr = not_yet_due(fitted["train"])
    fit, cal = time_slices(tr, 0.25)
    args = (fit, fit["late"].to_numpy(), cal, cal["late"].to_numpy())
    refit = build_late_payment(LatePaymentConfig()).fit(*args)
    once = build_late_payment(LatePaymentConfig(refit_on_all=False)).fit(*args)
    assert refit.shape_ == once.shape_ and refit.rows_fit_ == len(fit) + len(cal) and once.rows_fit_ == len(fit)
    np.testing.assert_array_equal(refit.calibrator_.X_thresholds_, once.calibrator_.X_thresholds_)
    both = pd.concat([fit, cal], ignore_index=True)
    alone = refit._booster(refit.shape_).fit(both[FEATURES], both["late"].to_numpy())
    np.testing.assert_allclose(refit.raw_proba(cal), alone.predict_proba(cal[FEATURES])[:, 1])
    assert not np.allclose(refit.raw_proba(cal), once.raw_proba(cal))


def test_with_one_shape_and_no_map_only_the_refit_is_fitted(fitted, monkeypatch):
    import lightgbm as lgb

    from training.examples import not_yet_due
    from training.late_payment import LatePaymentConfig, build_late_payment, time_slices

    tr = not_yet_due(fitted["train"])
    fit, cal = time_slices(tr, 0.25)
    args = (fit, fit["late"].to_numpy(), cal, cal["late"].to_numpy())
    rows = fitted["holdout"].head(300)
    fits = []
    original = lgb.LGBMClassifier.fit
    monkeypatch.setattr(lgb.LGBMClassifier, "fit", lambda self, x, *a, **k: (fits.append(len(x)),
                                                                               original(self, x, *a, **k))[1])
    one = build_late_payment(LatePaymentConfig(small_data_max_rows=0)).fit(*args)
    assert fits == [len(fit) + len(cal)] and one.calibrator_ is None and one.rows_fit_ == len(fit) + len(cal)
    fits.clear()
    both = build_late_payment(LatePaymentConfig(small_data_shape=None)).fit(*args)  # the same, and no map either
    assert fits == [len(fit) + len(cal)]
    np.testing.assert_array_equal(one.predict_proba(rows), both.predict_proba(rows))
    fits.clear()
    mapped = build_late_payment(LatePaymentConfig(small_data_max_rows=0, calibrate_refit=True)).fit(*args)
    assert fits == [len(fit), len(fit) + len(cal)] and mapped.calibrator_ is not None
    alone = mapped._booster(mapped.shape_).fit(pd.concat([fit, cal], ignore_index=True)[FEATURES],
                                               np.concatenate([args[1], args[3]]))
    np.testing.assert_allclose(one.raw_proba(rows), alone.predict_proba(rows[FEATURES])[:, 1])


def test_refitted_trees_serve_their_own_probabilities_unless_the_map_is_asked_for(fitted):
    from training.examples import not_yet_due
    from training.late_payment import LatePaymentConfig, build_late_payment, time_slices

    tr = not_yet_due(fitted["train"])
    fit, cal = time_slices(tr, 0.25)
    args = (fit, fit["late"].to_numpy(), cal, cal["late"].to_numpy())
    rows = fitted["holdout"].head(300)
    due = rows["days_to_due"].to_numpy() >= 0
    assert due.any() and (~due).any()
    for config, mapped in ((LatePaymentConfig(), False), (LatePaymentConfig(calibrate_refit=True), True),
                           (LatePaymentConfig(refit_on_all=False), True)):
        model = build_late_payment(config).fit(*args)
        raw = model.raw_proba(rows)
        expected = model.calibrator_.predict(raw) if mapped else raw
        p = model.predict_proba(rows)
        np.testing.assert_allclose(p[due], expected[due])
        assert (p[~due] == 1.0).all()  # an invoice already past due is late, whichever map
    assert not np.allclose(model.calibrator_.predict(raw), raw)  # the map is not the identity on these rows


def test_fits_on_two_threads_are_bit_for_bit_repeatable(fitted):
    """The gate takes a champion's recipe, refitted, for the model it registered: so on any thread count."""
    from training.examples import not_yet_due
    from training.late_payment import LatePaymentConfig, build_late_payment, time_slices
    from training.payment_timing import PaymentTimingConfig, build_payment_timing

    tr = not_yet_due(fitted["train"])
    fit, cal = time_slices(tr, 0.25)
    args = (fit, fit["late"].to_numpy(), cal, cal["late"].to_numpy())
    late = [build_late_payment(LatePaymentConfig(threads=2)).fit(*args).predict_proba(cal) for _ in range(2)]
    np.testing.assert_array_equal(late[0], late[1])
    train = fitted["train"]
    timing = [build_payment_timing(PaymentTimingConfig(threads=2)).fit(
        train, train["delay"].to_numpy(), train["censored"].to_numpy()).quantiles(cal) for _ in range(2)]
    np.testing.assert_array_equal(timing[0], timing[1])


def test_tree_shap_of_deep_trees_equals_lightgbm_pred_contrib(fitted):
    """Trees of 31 leaves (30 splits: up to 2^30 decision patterns) give LightGBM's values too."""
    import lightgbm as lgb

    from training.late_payment import tree_shap

    train = fitted["train"].dropna(subset=["late"])
    booster = lgb.LGBMClassifier(n_estimators=20, num_leaves=31, min_child_samples=5, verbose=-1, n_jobs=1).fit(
        train[FEATURES], train["late"].to_numpy()).booster_
    rows = fitted["holdout"][FEATURES].head(300).to_numpy(float)
    np.testing.assert_allclose(tree_shap(booster, rows), booster.predict(rows, pred_contrib=True)[:, :-1],
                               rtol=0, atol=1e-12)


def test_a_late_payment_model_unpickles_and_scores_without_scikit_learn(small_loaded, fitted, tmp_path):
    # `likvid score` and `worklist` import LightGBM without scikit-learn (serving.cli._predicting). The late-payment
    # model pickles its booster alone (LatePaymentModel.__getstate__), so one without a calibration map loads,
    # predicts and explains in a process that never imports scikit-learn, and gives the same rows.
    import pickle
    import subprocess
    import sys
    from pathlib import Path

    from features.invoices import invoice_features
    from training.examples import not_yet_due
    from training.late_payment import LatePaymentConfig, build_late_payment, time_slices

    fit, cal = time_slices(not_yet_due(fitted["train"]), 0.25)
    late = build_late_payment(LatePaymentConfig(small_data_shape=None)).fit(fit, fit["late"].to_numpy(), cal,
                                                                            cal["late"].to_numpy())
    assert late.calibrator_ is None
    x = invoice_features(small_loaded, fitted["at"])
    (tmp_path / "in.pkl").write_bytes(pickle.dumps((x, late, fitted["timing"])))
    code = ("import pickle, sys; from training import cores; cores.lightgbm_without_sklearn(); "
            "import training.scoring as s; "
            f"x, late, timing = pickle.loads(open({str(tmp_path / 'in.pkl')!r}, 'rb').read()); "
            "rows = s.score_features(x, late, timing); "
            "assert 'sklearn' not in sys.modules, 'scikit-learn imported'; "
            f"open({str(tmp_path / 'out.pkl')!r}, 'wb').write(pickle.dumps(rows))")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2], timeout=300)
    pd.testing.assert_frame_equal(pickle.loads((tmp_path / "out.pkl").read_bytes()), score_features(x, late,
                                                                                                     fitted["timing"]))
