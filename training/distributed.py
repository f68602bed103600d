"""The read commands on a Dask cluster (``--scheduler ADDRESS`` or ``LIKVID_DASK_SCHEDULER``), with the same
answers as in-process; without an address everything runs in-process, as before.

What is partitioned, and why exactly so. A customer's invoice features are not its own history alone: they
lean on the company's (peer late shares by industry and country, the days a dispute or paper adds learned
across customers, the fills for customers with thin records). ``features.invoices`` already splits the work
where that stops: ``history`` is the one company-wide pass over the as-of view, and each open invoice's
feature row is its own values plus its customer's resolved state. So ``score`` builds the feature rows where
the data was read (one pass), cuts them by customer into partitions of about equal size (every open invoice
of a customer in one partition), and the cluster does the per-invoice work that dominates as the book grows:
both models, the SHAP contributions and the reasons (``training.scoring.score_features``, row by row). The
rows come back in the in-process order, so the output is identical.

``customers`` and ``forecast`` (and its monthly view) run on the cluster as one task each (``on_cluster``), not
partitioned. Customer features and early warnings shrink toward the company's late share and test each customer
against the whole book's drift and order pace, and ``features.customers`` has no company-wide / per-customer
split like ``history``; a partition holding only its customers would grade them differently. The Monte Carlo
forecast draws the pay-day picks chunk after chunk from one ``numpy`` stream, by methods that reject draws
(bounded integers, the normals of the common-factor copula): the words a chunk uses are not known ahead, so no
chunk can start without drawing the ones before (``_Uniforms`` can jump only because ``random()`` uses one word
a number), and a customer's common factors are drawn for every customer at once; a path or customer split would
change the draws. Both stay exact this way; partitioning them needs those splits in their modules first.

Training is not distributed. When it is, it will fit on a sample gathered to one worker, not with
``lightgbm.dask``: the late-payment model is LightGBM followed by an isotonic calibration and the timing model
a boosted survival fit with a Kaplan-Meier residual distribution; ``lightgbm.dask`` covers the LightGBM part
alone, is tested only data-parallel (microsoft/LightGBM#3848), whose trees are not promised to equal the
single-machine fit the gate compares recipes by, and it hangs when a worker restarts or errors mid-fit (#4771,
#5390) or cannot bind its ports (#3753): what a nightly training must not meet. The fit is linear in rows, so a
capped sample fits on one worker in the time it takes in-process, with the very same recipe.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from features.company import Company
from features.contract import Inv
from features.policy import Policy

if TYPE_CHECKING:  # the models' modules import LightGBM: the command line imports this module at start
    from features.invoices import FeatureConfig
    from training.late_payment import LatePaymentModel
    from training.payment_timing import PaymentTimingModel

SCHEDULER_ENV = "LIKVID_DASK_SCHEDULER"
PARTITIONS_PER_THREAD = 2  # a slow partition (a big customer) is evened out by the others on the same worker
T = TypeVar("T")


class ClusterUnavailable(RuntimeError):
    """The Dask scheduler named cannot be reached."""


def scheduler_address(value: str | None = None) -> str | None:
    """The scheduler to use: ``value``, else ``LIKVID_DASK_SCHEDULER``, else ``None`` (in-process)."""
    value = value if value is not None else os.environ.get(SCHEDULER_ENV, "")
    return value.strip() or None


@functools.cache
def code_fingerprint() -> str:
    """A hash of the ``features`` and ``training`` sources this process runs (read once, at the first call)."""
    import features
    import training

    digest = hashlib.sha256()
    for package in (features, training):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root.parent)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@contextmanager
def connect(address: str, timeout: str = "30s") -> Iterator[Any]:
    """A ``distributed.Client`` on the scheduler at ``address``; ``ClusterUnavailable`` naming it when it cannot
    be reached within ``timeout``, or when a worker runs other likvid code than this process (its answers
    would not be this process's)."""
    from distributed import Client

    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:  # ValueError: an address that is not one
        raise ClusterUnavailable(f"cannot reach the Dask scheduler at {address}: {e}") from None
    try:
        same_code(client, code_fingerprint())
        yield client
    finally:
        client.close()


def same_code(client: Any, fingerprint: str) -> None:
    """``ClusterUnavailable`` naming the workers whose ``code_fingerprint`` is not ``fingerprint``."""
    other = sorted(w for w, code in client.run(code_fingerprint).items() if code != fingerprint)
    if other:
        raise ClusterUnavailable(f"the Dask workers {', '.join(other)} run other likvid code than this command; "
                                 "install the same version on every worker")


def customer_partitions(customers: pd.Series, n: int) -> list[np.ndarray]:
    """Row positions of ``customers`` cut into at most ``n`` non-empty partitions of about equal size, every
    row of a customer in the same one: customers largest first, each into the smallest partition so far
    (ties by customer id, so the cut is the same on every run)."""
    if customers.empty:
        return []
    codes, ids = pd.factorize(customers.to_numpy(dtype=object), sort=True)
    counts = np.bincount(codes, minlength=len(ids))
    order = np.lexsort((np.arange(len(ids)), -counts))  # largest first, then by id
    n = max(1, min(n, len(ids)))
    load, home = np.zeros(n, dtype=np.int64), np.empty(len(ids), dtype=np.intp)
    for c in order:
        home[c] = int(np.argmin(load))
        load[home[c]] += counts[c]
    part = home[codes]
    return [np.flatnonzero(part == k) for k in range(n) if (part == k).any()]


def _threads(client: Any) -> int:
    return max(1, sum(client.nthreads().values()))


def _score_part(x: pd.DataFrame, late: LatePaymentModel, timing: PaymentTimingModel, policy: Policy,
                positions: np.ndarray) -> pd.DataFrame:
    """One partition's ``score`` rows, indexed by their positions among all feature rows."""
    from training.scoring import score_features

    scored = score_features(x, late, timing, policy=policy)
    scored.index = positions
    return scored


def score(company: Company, as_of_date: str | pd.Timestamp | None = None,
          models: tuple[LatePaymentModel, PaymentTimingModel] | None = None, cfg: FeatureConfig | None = None,
          policy: Policy = Policy(), company_key: str | None = None, scheduler: str | None = None) -> pd.DataFrame:
    """``training.scoring.score``, with the per-invoice work on the cluster at ``scheduler`` (partitioned by
    customer) when one is given; the rows are the same either way."""
    from training.scoring import in_score_order, score_inputs
    from training.scoring import score as score_here

    if not scheduler:  # None or empty: in-process
        return score_here(company, as_of_date, models, cfg, policy, company_key)
    at, models, x = score_inputs(company, as_of_date, models, cfg, policy, company_key)
    if x.empty:  # nothing open: the in-process answer (an empty frame with the contract's columns)
        return score_here(company, at, models, cfg, policy, company_key)
    with connect(scheduler) as client:
        late, timing = client.scatter(list(models), broadcast=True, hash=False)
        parts = customer_partitions(x[Inv.CUSTOMER], PARTITIONS_PER_THREAD * _threads(client))
        chunks = client.scatter([x.iloc[rows] for rows in parts], hash=False)
        futures = [client.submit(_score_part, chunk, late, timing, policy, rows, pure=False)
                   for chunk, rows in zip(chunks, parts)]
        scored = pd.concat(client.gather(futures)).sort_index()
    return in_score_order(scored)  # the in-process order


def on_cluster(scheduler: str | None, fn: Callable[..., T], company: Company, *args: Any, **kwargs: Any) -> T:
    """``fn(company, *args, **kwargs)``, as one task on the cluster at ``scheduler`` (in-process without one)."""
    if not scheduler:  # None or empty: in-process
        return fn(company, *args, **kwargs)
    with connect(scheduler) as client:
        [data] = client.scatter([company], hash=False)
        return client.submit(fn, data, *args, pure=False, **kwargs).result()


def customer_risk(company: Company, as_of: str | pd.Timestamp | None = None, *, policy: Policy = Policy(),
                  company_key: str | None = None, models: Any = None, scheduler: str | None = None) -> pd.DataFrame:
    """``training.customers.customer_risk`` with the champion models loaded here, run on the cluster at
    ``scheduler`` as one task (see the module's note on why it is not partitioned)."""
    from training.customers import customer_risk as risk_here
    from training.customers import load_customer_models

    if models is None and scheduler:
        if company_key is None:
            raise ValueError("customer_risk needs the models or the company key of their champion")
        models = load_customer_models(company_key, policy)
    return on_cluster(scheduler, risk_here, company, as_of, models, policy=policy, company_key=company_key)

