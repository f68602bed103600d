"""The timing model's level search (``payment_timing._search_levels``) gives ``np.searchsorted``'s indices."""

import numpy as np

from training.payment_timing import _search_levels


def test_search_levels_is_searchsorted_left_on_ties_edges_and_exact_steps():
    rng = np.random.default_rng(3)
    for trial in range(300):
        n = int(rng.integers(1, 3000))
        cdf = np.sort(rng.random(n))
        if trial % 3 == 0:  # ties: a CDF that stays flat over censored steps
            cdf = np.maximum.accumulate(np.round(cdf, 2))
        if trial % 5 == 0:  # a defect: the CDF ends below 1
            cdf = cdf * 0.9
        u = np.clip(np.concatenate([rng.random(2000), cdf, np.nextafter(cdf, 0.0), np.nextafter(cdf, 1.0),
                                    [0.0, 1.0, 0.5, 0.25, 1.0 / 1024, np.nextafter(1.0, 0.0)]]), 0.0, 1.0)
        assert np.array_equal(_search_levels(cdf, u), np.searchsorted(cdf, u, side="left")), trial


def test_search_levels_outside_the_unit_interval_or_nan_falls_back_to_searchsorted():
    cdf = np.linspace(0.01, 0.99, 50)
    for u in (np.array([-0.1, 0.5]), np.array([0.5, 1.5]), np.array([0.2, np.nan]), np.zeros(0)):
        assert np.array_equal(_search_levels(cdf, u), np.searchsorted(cdf, u, side="left"))
    assert np.array_equal(_search_levels(np.zeros(0), np.array([0.3])), [0])


def test_search_levels_over_a_long_flat_run_is_still_searchsorted():
    from training.payment_timing import MAX_SLICE_STEPS

    # 5,000 censored residuals in a row keep the CDF flat at 0.4: a level just above it walks past the cap
    cdf = np.concatenate([np.linspace(0.0, 0.4, 100), np.full(5000, 0.4), np.linspace(0.41, 1.0, 100)])
    u = np.concatenate([np.nextafter(0.4, 1.0) * np.ones(10), np.linspace(0.0, 1.0, 1001)])
    assert 5000 > MAX_SLICE_STEPS
    assert np.array_equal(_search_levels(cdf, u), np.searchsorted(cdf, u, side="left"))
