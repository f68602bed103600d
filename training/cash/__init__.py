"""The weekly cash forecast, one room per job.

``shocks`` (the what-if registry) and ``evaluate`` (WAPE, coverage) import nothing of the package;
``series`` (the weekly invoicing model) and ``model`` (``CashModel``: what is learned beyond the
invoice models) fit; ``engine`` simulates the paths; ``forecast`` turns them into the contract's
rows; ``monthly`` folds them into calendar months; ``liquidity`` says what can be placed and how a gap
closes; ``backtest`` replays rolling origins against baselines; ``family`` is the MLflow part (train,
register, load the champions, the pyfunc); ``versions``, ``variance`` and ``bridge`` keep saved forecasts
and hold them against what happened and against each other.
"""
