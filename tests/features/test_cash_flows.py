"""Daily flows summed once and shared by the weekly series and the opening balance (features.cash.daily_flows)."""

from __future__ import annotations

import pandas as pd
import pytest

from features import cash
from features.asof import as_of


def test_shared_flows_give_the_same_series_and_balance(small_loaded):
    at = pd.Timestamp("2024-10-31")
    flows = cash.daily_flows(small_loaded, at)
    pd.testing.assert_frame_equal(cash.weekly_series(small_loaded, at, flows=flows),
                                  cash.weekly_series(small_loaded, at))
    view = as_of(small_loaded, at)
    assert cash.opening_balance(view, at, flows=flows) == cash.opening_balance(view, at)
    assert cash.has_opening_balance(small_loaded, at) == (not view.get("cash_balances").empty)


def test_flows_of_another_date_are_refused(small_loaded):
    flows = cash.daily_flows(small_loaded, pd.Timestamp("2024-09-30"))
    with pytest.raises(ValueError, match="as of 2024-09-30, not 2024-10-31"):
        cash.weekly_series(small_loaded, pd.Timestamp("2024-10-31"), flows=flows)
