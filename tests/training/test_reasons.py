"""Reasons a credit controller never doubts: facts with what they are compared with, rendered at the edge."""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd
import pytest

from features.invoices import BY_NAME, invoice_features
from training.decisions.reasons import Reason, against_reading, reason, reasons, sentences
from training.scoring import score_features


def _scored(small_loaded, fitted, dates=("2025-01-31", "2025-03-31", "2025-06-30")):
    for at in dates:
        x = invoice_features(small_loaded, at).reset_index(drop=True)
        scored, facts = score_features(x, fitted["late"], fitted["timing"], facts=True)
        yield x, scored, facts


def test_no_reason_contradicts_its_direction_without_a_comparison(small_loaded, fitted):
    seen = compared = 0
    for x, scored, facts in _scored(small_loaded, fitted):
        assert len(facts) == len(scored) == len(x)
        for i, row_facts in enumerate(facts):
            sentences = [scored.at[i, f"reason_{j + 1}"] for j in range(len(row_facts))]
            assert sentences == [f.sentence() for f in row_facts]  # the words say exactly the facts
            for fact in row_facts:
                seen += 1
                if fact.compared_with is None:
                    assert not against_reading(fact.feature, fact.value, fact.raises), fact.sentence()
                    continue
                compared += 1
                # The comparison explains the effect: below what it is compared with when it lowers risk.
                assert (fact.value > fact.compared_with) == fact.raises, fact.sentence()
                assert f" than {fact.compared_to} " in fact.sentence()
    assert seen > 1000 and compared > 0


def test_bad_facts_that_lower_risk_say_what_they_are_compared_with(small_loaded, fitted):
    for _, scored, _ in _scored(small_loaded, fitted):
        text = scored[["reason_1", "reason_2", "reason_3"]].stack()
        lowering = text[text.str.endswith("(lowers risk)")]
        for pattern in (r"customer paid [1-9]\d*% of its (?:recent )?invoices late \(",
                        r"customer has [\d,]+ overdue \(", r"customer paid [1-9]\d* of its last \d+ invoices late \("):
            assert not lowering.str.contains(pattern).any(), lowering[lowering.str.contains(pattern)].tolist()
        assert not text.str.contains(r"in 0 days|is 0 days after|\bnan\b").any()


def test_a_fact_below_its_comparison_is_shown_with_it_and_one_above_is_not_shown():
    row = {"overdue_amount": 36_283.0, "usual_overdue_amount": 80_000.0}
    fact = reason("overdue_amount", row, -0.4)
    assert fact.sentence() == "customer has 36,283 overdue, less than its usual 80,000 (lowers risk)"
    assert reason("overdue_amount", {**row, "usual_overdue_amount": 10_000.0}, -0.4) is None
    raised = reason("overdue_amount", {**row, "usual_overdue_amount": 10_000.0}, 0.4)
    assert raised.sentence() == "customer has 36,283 overdue, more than its usual 10,000 (raises risk)"
    assert reason("late_share_recent_weighted", {"late_share_recent_weighted": 0.72, "late_share": 0.85}, -0.2) \
        .sentence() == "customer paid 72% of its recent invoices late, less than its long-run 85% (lowers risk)"
    assert reason("late_share_recent_weighted", {"late_share_recent_weighted": 0.72}, -0.2) is None
    assert reason("disputed", {"disputed": 0.0}, 0.3) is None  # "not disputed (raises risk)" reads as nonsense
    assert reason("disputed", {"disputed": 0.0}, -0.3).sentence() == "invoice is not disputed (lowers risk)"


def test_every_comparison_is_declared_with_a_feature_that_reads_one_way():
    for name, feature in BY_NAME.items():
        if feature.compare is not None:
            assert feature.sense != 0, name


def test_the_worklist_reason_is_picked_from_facts_not_parsed_from_words():
    from training.collections import _risk_reason

    due = Reason("days_to_due", -3.0, np.inf, row={"days_to_due": -3.0})
    lower = Reason("late_share", 0.1, -0.5, 0.3, "similar customers'", row={"late_share": 0.1})
    late = Reason("late_last_n", 6.0, 0.2, row={"late_last_n": 6.0, "n_last_n": 10.0})
    assert _risk_reason([due, lower, late]) == "customer paid 6 of its last 10 invoices late"
    assert _risk_reason([due, lower]) == ""


def test_past_due_invoices_lead_with_how_late_they_are(small_loaded, fitted):
    x, scored, facts = next(_scored(small_loaded, fitted, ("2025-03-31",)))
    overdue = np.nonzero(x["days_overdue"].to_numpy() > 0)[0]
    assert len(overdue)
    for i in overdue:
        assert facts[i][0].feature == "days_to_due" and facts[i][0].raises
        assert scored.at[i, "reason_1"].endswith("past due (raises risk)")
    assert pd.Series([f[0].feature for f in facts]).nunique() > 1


def test_reasons_and_sentences_leave_the_garbage_collector_as_they_found_it():
    """They pause it while they build their objects, and give it back on, or off when it was off, even on a
    failure."""
    x = pd.DataFrame({"amount": [1_000.0, -0.0], "late_share": [0.5, np.nan], "prior_late_share": [0.2, 0.3]})
    contributions = pd.DataFrame({"amount": [0.3, -0.1], "late_share": [0.4, 0.0]})
    was = gc.isenabled()
    try:
        for enabled in (True, False):
            gc.enable() if enabled else gc.disable()
            facts = reasons(x, contributions, 2)
            said = sentences(facts, x.index, 2)
            assert gc.isenabled() == enabled
            assert said["reason_1"].tolist() == [f[0].sentence() for f in facts]
            assert said["reason_1"].tolist()[1] == "invoice amount is -0 (lowers risk)"
            with pytest.raises(KeyError):
                reasons(x, contributions.rename(columns={"amount": "no_such_feature"}), 2)
            assert gc.isenabled() == enabled
    finally:
        gc.enable() if was else gc.disable()
