"""The read commands on a Dask cluster give the very rows they give in-process (``training.distributed``)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.invoices import FeatureConfig
from training import distributed
from training.cash.forecast import forecast
from training.cash.model import CashModel, ForecastModels
from training.customers import CustomerConfig, customer_risk, fit_customer_models
from training.pipeline import score


@pytest.fixture(scope="module")
def scheduler():
    """A local cluster of two worker processes with one thread each: its scheduler's address."""
    from distributed import LocalCluster

    started = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert time.perf_counter() - started < 30, "two local workers took over 30 s to start"
        yield cluster.scheduler_address


def test_partitions_keep_customers_whole_and_even():
    customers = pd.Series(["b"] * 5 + ["a"] * 3 + ["c"] * 3 + ["d"] * 2 + ["e"] * 2)
    parts = distributed.customer_partitions(customers, 3)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(customers)))  # every row once
    owners = [set(customers.iloc[p]) for p in parts]
    assert all(not (a & b) for i, a in enumerate(owners) for b in owners[i + 1:])  # a customer in one partition
    assert sorted(len(p) for p in parts) == [5, 5, 5]
    assert [p.tolist() for p in distributed.customer_partitions(customers, 3)] == [p.tolist() for p in parts]
    assert len(distributed.customer_partitions(customers, 50)) == 5  # never more partitions than customers
    assert distributed.customer_partitions(customers.iloc[:0], 3) == []


def test_scheduler_from_option_else_environment(monkeypatch):
    monkeypatch.delenv(distributed.SCHEDULER_ENV, raising=False)
    assert distributed.scheduler_address() is None
    monkeypatch.setenv(distributed.SCHEDULER_ENV, " tcp://10.0.0.5:8786 ")
    assert distributed.scheduler_address() == "tcp://10.0.0.5:8786"
    assert distributed.scheduler_address("tcp://other:8786") == "tcp://other:8786"
    monkeypatch.setenv(distributed.SCHEDULER_ENV, "")
    assert distributed.scheduler_address() is None


def test_unreachable_scheduler_is_named():
    with pytest.raises(distributed.ClusterUnavailable, match="127.0.0.1:9"):
        with distributed.connect("tcp://127.0.0.1:9", timeout="1s"):
            pass


def test_workers_running_other_code_are_refused(scheduler):
    with distributed.connect(scheduler) as client:  # the same code here: accepted
        with pytest.raises(distributed.ClusterUnavailable, match="run other likvid code"):
            distributed.same_code(client, "not this code")


def test_score_on_the_cluster_is_the_in_process_score(small_loaded, fitted, scheduler):
    models = (fitted["late"], fitted["timing"])
    here = score(small_loaded, fitted["at"], models=models)
    there = distributed.score(small_loaded, fitted["at"], models=models, scheduler=scheduler)
    assert here["customer_id"].nunique() > 4 * 2  # enough customers for every partition of both workers
    pd.testing.assert_frame_equal(there, here)
    # Before the first invoice nothing is open: the same empty answer.
    early = pd.Timestamp("2000-01-01")
    pd.testing.assert_frame_equal(distributed.score(small_loaded, early, models=models, scheduler=scheduler),
                                  score(small_loaded, early, models=models))


@pytest.fixture(scope="module")
def customer_models(small_loaded, fitted):
    return fit_customer_models(small_loaded, fitted["at"], CustomerConfig(n_estimators=30, k_range=(2, 3)))


@pytest.fixture(scope="module")
def cash_models(small_loaded, fitted):
    return ForecastModels(fitted["timing"], CashModel().fit(small_loaded, fitted["at"]), {}, FeatureConfig())


def test_customers_and_forecast_on_the_cluster_are_the_in_process_ones(small_loaded, fitted, customer_models,
                                                                       cash_models, scheduler):
    at = fitted["at"]
    pd.testing.assert_frame_equal(
        distributed.customer_risk(small_loaded, at, models=customer_models, scheduler=scheduler),
        customer_risk(small_loaded, at, models=customer_models))
    here = forecast(small_loaded, at, 4, models=cash_models, paths=100)
    pd.testing.assert_frame_equal(
        distributed.on_cluster(scheduler, forecast, small_loaded, at, 4, models=cash_models, paths=100), here)


def test_the_commands_take_the_scheduler_from_the_option_or_the_environment(small_company, fitted, customer_models,
                                                                            cash_models, scheduler, tmp_path,
                                                                            monkeypatch):
    from serving.cli import app

    # Fitted models stand in for the registry's champions (``tests/serving`` covers loading those).
    monkeypatch.setattr("training.scoring.champion_pair", lambda key, policy=None: (fitted["late"], fitted["timing"]))
    monkeypatch.setattr("training.customers.load_customer_models", lambda key, policy=None: customer_models)
    monkeypatch.setattr("training.cash.model.load_forecast_models", lambda key, policy=None: cash_models)
    monkeypatch.delenv(distributed.SCHEDULER_ENV, raising=False)
    runner = CliRunner()

    def run(command: str, out: str, *options: str) -> pd.DataFrame:
        result = runner.invoke(app, [command, str(small_company), "--out", str(tmp_path / out), *options])
        assert result.exit_code == 0, result.output
        return pd.read_csv(tmp_path / out)

    pd.testing.assert_frame_equal(run("customers", "there.csv", "--scheduler", scheduler), run("customers", "here.csv"))
    assert len(run("forecast", "cash.csv", "--scheduler", scheduler, "--weeks", "4", "--paths", "100")) == 4
    here = run("score", "here.csv")
    monkeypatch.setenv(distributed.SCHEDULER_ENV, scheduler)  # the environment, as a deployment would set it
    pd.testing.assert_frame_equal(run("score", "there.csv"), here)
    result = runner.invoke(app, ["score", str(small_company), "--out", str(tmp_path / "x.csv"),
                                 "--scheduler", "not a scheduler"])
    assert result.exit_code == 2 and "cannot reach the Dask scheduler at not a scheduler" in result.output
