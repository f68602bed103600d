"""The refit on everything known reuses the origin's snapshots: the same rows as building them all again."""

from __future__ import annotations

import pandas as pd

from features.asof import last_known_date
from features.invoices import SNAPSHOT, FeatureConfig
from training import examples as ex
from training.examples import ExampleConfig, examples
from training.invoice_families import LatePaymentFamily


def test_examples_at_a_later_date_from_the_earlier_ones_equal_examples_built_afresh(small_loaded, monkeypatch):
    cfg = ExampleConfig(every_days=21, holdout_days=63)
    at = last_known_date(small_loaded)
    origin = at - pd.Timedelta(days=cfg.holdout_days)
    earlier = examples(small_loaded, origin, cfg, workers=1)
    built: list = []
    real = ex.snapshots
    monkeypatch.setattr(ex, "snapshots", lambda view, dates, *a, **k: built.extend(dates) or real(view, dates, *a, **k))
    reused = examples(small_loaded, at, cfg, workers=1, earlier=earlier)
    fresh = examples(small_loaded, at, cfg, workers=1)
    pd.testing.assert_frame_equal(reused, fresh, check_exact=True)
    later = sorted(set(fresh[SNAPSHOT]) - set(earlier[SNAPSHOT]))
    # The first call built only the dates the origin's examples did not hold; the second built them all.
    assert built[:len(later)] == later and len(built) == len(later) + fresh[SNAPSHOT].nunique()
    assert set(earlier[SNAPSHOT]) & set(fresh[SNAPSHOT])  # something was shared
    # The labels are as known at ``at``, not the origin's: an invoice open then and paid since is decided now.
    both = earlier.merge(reused, on=["invoice_id", SNAPSHOT], suffixes=("_then", "_now"))
    assert (both["late_then"].isna() & both["late_now"].notna()).any()


def test_a_family_refits_on_the_origin_s_snapshots(small_loaded, monkeypatch):
    family = LatePaymentFamily(ExampleConfig(every_days=21, holdout_days=63), FeatureConfig())
    at = last_known_date(small_loaded)
    origin = at - pd.Timedelta(days=63)
    seen = []
    real = ex.examples
    monkeypatch.setattr("training.invoice_families.snapshot_examples",
                        lambda *a, earlier=None, **k: seen.append(earlier) or real(*a, earlier=earlier, **k))
    first = family.examples(small_loaded, origin)
    family.examples(small_loaded, at)
    assert seen[0] is None and seen[1] is first


def test_a_row_cap_keeps_every_k_th_snapshot_date_lined_up_and_logs_it(small_loaded, caplog):
    at = last_known_date(small_loaded)
    origin = at - pd.Timedelta(days=63)
    full = examples(small_loaded, at, ExampleConfig(every_days=21, holdout_days=63), workers=1)
    per_date = len(full) / full[SNAPSHOT].nunique()
    cfg = ExampleConfig(every_days=21, holdout_days=63, max_rows=int(full[SNAPSHOT].nunique() * per_date / 3))
    with caplog.at_level("INFO", logger="likvid.training"):
        capped = examples(small_loaded, at, cfg, workers=1)
    assert "row cap" in caplog.text
    dates, all_dates = sorted(set(capped[SNAPSHOT])), sorted(set(full[SNAPSHOT]))
    assert dates[-1] == all_dates[-1] and len(all_dates) / 5 < len(dates) < len(all_dates) / 2
    assert set(dates) <= set(all_dates)
    # The rows of a kept date are that date's rows; and the origin's capped dates line up with these.
    pd.testing.assert_frame_equal(capped.reset_index(drop=True),
                                  full[full[SNAPSHOT].isin(dates)].reset_index(drop=True), check_exact=True)
    earlier = examples(small_loaded, origin, cfg, workers=1)
    grid = set(earlier[SNAPSHOT]) - {earlier[SNAPSHOT].max()}
    assert grid <= set(dates) or set(dates) - {at} <= grid  # one step divides the other


def test_customer_examples_from_the_origin_s_features_equal_examples_built_afresh(small_loaded):
    from training.customers import CustomerConfig, CustomerFamily, customer_examples

    cfg = CustomerConfig()
    at = last_known_date(small_loaded)
    origin = at - pd.Timedelta(days=cfg.holdout_days)
    known: dict = {}
    customer_examples(small_loaded, origin, cfg, workers=1, known=known)
    at_origin = set(known)
    reused = customer_examples(small_loaded, at, cfg, workers=1, known=known)
    fresh = customer_examples(small_loaded, at, cfg, workers=1)
    pd.testing.assert_frame_equal(reused, fresh, check_exact=True)
    assert at_origin and at_origin < set(known)  # shared dates, and the later ones added
    family = CustomerFamily()
    family.examples(small_loaded, origin)
    assert len(family.memo) == 1 and set(next(iter(family.memo.values()))) == at_origin
