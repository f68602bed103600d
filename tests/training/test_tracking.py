"""MLflow: runs, the one recipe, the registry per company, the honest gate, the training lock, train/score."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from serving.cli import app
from training import tracking
from training.examples import ExampleConfig
from training.late_payment import LatePaymentConfig
from training.pipeline import TrainConfig, train
from training.scoring import SCORE_COLUMNS


def test_gate_decisions():
    assert tracking.gate("brier", 0.2, None).promote
    assert tracking.gate("brier", 0.2, 0.2).promote
    assert tracking.gate("brier", 0.19, 0.2).promote
    keep = tracking.gate("brier", 0.25, 0.2)
    assert not keep.promote and "worse than" in keep.reason
    assert not tracking.gate("auc", 0.7, 0.8, lower_is_better=False).promote


# --- the recipe on a family whose fits are known ------------------------------------------------------


@dataclass(frozen=True)
class Fitted:
    bias: float
    fitted_at: pd.Timestamp


def fake_output(model: Fitted, frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"y": frame["x"] + model.bias})


@dataclass(frozen=True)
class FakeFamily:
    """A family whose model's holdout error is its ``bias``: the gate's figures are known in advance."""

    bias: float = 0.1
    grace_days: int = 0
    fits: list = field(default_factory=list, compare=False)
    name: str = "likvid-fake"
    rule: tracking.GateRule = tracking.GateRule("error")
    holdout_days: int = 91
    output = staticmethod(fake_output)

    def settings(self) -> dict:
        return {"bias": self.bias}

    def definition(self) -> dict:
        return {"grace_days": self.grace_days}

    def with_settings(self, settings: dict) -> FakeFamily:
        return FakeFamily(float(settings["bias"]), self.grace_days, self.fits)

    def examples(self, company, date):
        return date

    def fit(self, examples) -> Fitted:
        self.fits.append((self.bias, examples))
        return Fitted(self.bias, examples)

    def holdout(self, company, origin, at):
        return (origin, at)

    def measure(self, model: Fitted, holdout) -> float:
        assert model.fitted_at <= holdout[0], "a model measured on the holdout was fitted on it"
        return abs(model.bias)

    def evaluate(self, model, examples, holdout, out: Path) -> tracking.Evaluation:
        table = pd.DataFrame({"error": [self.measure(model, holdout), 0.5]}, index=["model", "baseline"])
        return tracking.Evaluation(table, float(table.loc["model", "error"]), {"rows.holdout": 3})

    def input_example(self, model, company, at) -> pd.DataFrame:
        return pd.DataFrame({"x": [1.0, 2.0]})


AT = pd.Timestamp("2025-06-30")


def _champion_version(company: str) -> str:
    return str(tracking.connect().get_model_version_by_alias(tracking.model_name("likvid-fake", company),
                                                             tracking.CHAMPION).version)


def test_the_refit_on_everything_known_is_registered_and_the_run_says_which_figure_is_whose(store):
    family = FakeFamily(0.1)
    result = tracking.run_recipe(family, None, "acme", "data/acme", AT)
    origin = AT - pd.Timedelta(days=91)
    assert [at for _, at in family.fits] == [origin, AT]
    assert result.origin_model.fitted_at == origin and result.model.fitted_at == AT
    champion = tracking.load_champion("likvid-fake", "acme")
    assert champion.model.fitted_at == AT and champion.company == "acme" and champion.version == "1"
    assert champion.tags[tracking.FITTED_TAG] == "2025-06-30" and champion.tags[tracking.ORIGIN_TAG] == "2025-03-31"
    assert champion.settings == {"bias": 0.1} and champion.features == {"grace_days": 0}
    run = tracking.connect().get_run(result.run_id)
    assert run.data.params["evaluated_origin"] == "2025-03-31" and run.data.params["fitted_as_of"] == "2025-06-30"
    assert run.data.tags[tracking.COMPANY_TAG] == "acme" and "evaluated_origin" in run.data.tags["mlflow.note.content"]
    assert run.data.metrics["error"] == pytest.approx(0.1) and run.data.metrics["error_baseline"] == 0.5
    client = tracking.connect()
    assert client.get_registered_model("acme.likvid-fake").tags[tracking.COMPANY_TAG] == "acme"


def test_the_gate_compares_the_champions_recipe_refitted_at_the_same_origin(store):
    tracking.run_recipe(FakeFamily(0.1), None, "acme", "d", AT)
    same = FakeFamily(0.1)
    decision = tracking.run_recipe(same, None, "acme", "d", AT).decision
    assert decision.promote and "same recipe" in decision.reason
    assert len(same.fits) == 2  # no extra fit: the champion's refit would be this very model
    worse = FakeFamily(0.3)
    decision = tracking.run_recipe(worse, None, "acme", "d", AT + pd.Timedelta(days=7)).decision
    assert not decision.promote and decision.champion == pytest.approx(0.1) and decision.candidate == pytest.approx(0.3)
    origin = AT + pd.Timedelta(days=7 - 91)
    assert (0.1, origin) in worse.fits  # the champion's recipe, at the challenger's origin
    assert _champion_version("acme") == "2"
    better = tracking.run_recipe(FakeFamily(0.05), None, "acme", "d", AT).decision
    assert better.promote and _champion_version("acme") == "4"


def test_a_new_definition_of_late_is_promoted_and_an_old_champion_refused(store):
    tracking.run_recipe(FakeFamily(0.1), None, "acme", "d", AT)
    decision = tracking.run_recipe(FakeFamily(0.3, grace_days=5), None, "acme", "d", AT).decision
    assert decision.promote and "definition of late" in decision.reason
    champion = tracking.load_champion("likvid-fake", "acme")
    champion.check_features({"grace_days": 5})
    with pytest.raises(tracking.ChampionError, match="grace_days=5 but the policy says 0; retrain"):
        champion.check_features({"grace_days": 0})


def test_companies_keep_their_own_champions_and_another_companys_is_refused(store):
    tracking.run_recipe(FakeFamily(0.1), None, "a", "d", AT)
    tracking.run_recipe(FakeFamily(0.9), None, "b", "d", AT)  # worse, but for another company: no comparison
    assert _champion_version("a") == "1" and _champion_version("b") == "1"
    assert tracking.load_champion("likvid-fake", "a").model.bias == 0.1
    assert tracking.load_champion("likvid-fake", "b").model.bias == 0.9
    with pytest.raises(LookupError, match="for company c .*run `likvid train DATA` first"):
        tracking.load_champion("likvid-fake", "c")
    tracking.connect().set_model_version_tag("b.likvid-fake", "1", tracking.COMPANY_TAG, "a")
    with pytest.raises(tracking.ChampionError, match="trained on company 'a', not 'b'"):
        tracking.load_champion("likvid-fake", "b")


# --- the training lock -----------------------------------------------------------------------------------


def test_a_second_training_of_the_same_company_waits_then_stops_with_a_message(store):
    held, release = threading.Event(), threading.Event()

    def first() -> None:
        with tracking.company_lock("acme"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(10)
    said = []
    try:
        with pytest.raises(tracking.RegistryBusy, match="another `likvid train` of company acme"):
            with tracking.company_lock("acme", wait=0.2, say=said.append):
                pass
        assert said and "waiting" in said[0]
        with tracking.company_lock("other", wait=0):  # another company trains meanwhile
            pass
    finally:
        release.set()
        thread.join()
    with tracking.company_lock("acme", wait=0):  # free again
        pass


def test_the_lock_holds_across_processes(store):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from training import tracking\n"
         "with tracking.company_lock('acme'):\n    print('held', flush=True); sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(tracking.RegistryBusy):
            with tracking.company_lock("acme", wait=0.2):
                pass
    finally:
        holder.communicate("\n", timeout=20)
    assert tracking.lock_path("acme").parent == Path(store.removeprefix("sqlite:///")).parent


# --- the whole training ----------------------------------------------------------------------------------

FAST = TrainConfig(examples=ExampleConfig(every_days=28, holdout_days=63), cash_paths=100)


def test_train_registers_promotes_and_keeps_the_better_champion(store, small_loaded, small_company):
    steps = []
    first = train(small_loaded, str(small_company), cfg=FAST, progress=lambda *a: steps.append(a))
    assert first.company == small_company.name and all(d.promote for d in first.decisions.values())
    assert set(first.decisions) == set(tracking.FAMILIES)
    assert {done for done, _, _ in steps} == {0, 1, 2, 3, 4} and {total for _, total, _ in steps} == {4}
    late = tracking.model_name(tracking.LATE_PAYMENT, first.company)
    client = tracking.connect()
    assert str(client.get_model_version_by_alias(late, "champion").version) == "1"
    # A crippled candidate is registered but does not take the champion alias.
    weak = TrainConfig(examples=FAST.examples, cash_paths=100,
                       late=LatePaymentConfig(n_estimators=1, learning_rate=0.01, num_leaves=2, small_data_shape=None))
    second = train(small_loaded, str(small_company), cfg=weak)
    decision = second.decisions[tracking.LATE_PAYMENT]
    assert not decision.promote and decision.champion is not None
    assert second.decisions[tracking.PAYMENT_TIMING].promote  # same recipe as its champion
    assert str(client.get_model_version_by_alias(late, "champion").version) == "1"
    assert client.get_model_version(late, "2").tags["gate"] == "keep"
    run = mlflow.search_runs(experiment_names=[tracking.LATE_PAYMENT], order_by=["start_time DESC"]).iloc[0]
    assert run["tags.gate.decision"] == "keep" and run["tags.likvid.company"] == first.company
    for key in ("metrics.auc", "metrics.auc_customer_late_share", "metrics.auc_logistic_regression",
                "metrics.ece", "metrics.brier", "params.as_of", "params.rows.holdout", "params.evaluated_origin",
                "params.fitted_as_of"):
        assert key in run.index and not pd.isna(run[key]), key
    artifacts = {a.path for a in tracking.connect().list_artifacts(run["run_id"])}
    assert {"reliability.png", "shap_summary.png", "metrics_by_segment.csv"} <= artifacts


def test_score_without_a_champion_says_so(store, small_company, tmp_path):
    result = CliRunner().invoke(app, ["score", str(small_company), "--out", str(tmp_path / "s.csv")])
    assert result.exit_code == 1
    assert "run `likvid train DATA` first" in result.output


def test_grace_days_in_likvid_yaml_trains_and_scores_one_definition_of_late(store, small_company, tmp_path):
    from features.policy import load_policy
    from training.examples import examples

    data = tmp_path / "acme"
    shutil.copytree(small_company, data)
    policy_file = data / "likvid.yaml"  # the generator's own settings (base currency...) and five days' grace
    policy_file.write_text((policy_file.read_text() if policy_file.exists() else "") + "\ngrace_days: 5\n")
    policy = load_policy(data)
    cfg = TrainConfig.from_policy(policy)
    assert cfg.features.grace_days == 5 and cfg.customer_features.grace_days == 5
    from features.load import validate

    company = validate(data).company
    at = pd.Timestamp("2025-05-31")
    strict, graced = examples(company, at, FAST.examples), examples(company, at, FAST.examples, cfg.features)
    assert graced["late"].sum() < strict["late"].sum()  # five days' grace: fewer invoices count as late

    runner = CliRunner()
    result = runner.invoke(app, ["train", str(data), "--as-of", "2025-05-31", "--threads", "0"])
    assert result.exit_code == 0, result.output
    assert "promoted to champion" in result.output and "Company acme" in result.output
    champion = tracking.load_champion(tracking.LATE_PAYMENT, "acme", policy)
    assert champion.features["grace_days"] == 5
    assert json.loads(champion.tags[tracking.SETTINGS_TAG])["late"]["threads"] == os.cpu_count()  # 0: every core
    timing = tracking.load_champion(tracking.PAYMENT_TIMING, "acme", policy)
    assert json.loads(timing.tags[tracking.SETTINGS_TAG])["timing"]["threads"] == os.cpu_count()
    out = tmp_path / "scores.csv"
    result = runner.invoke(app, ["score", str(data), "--as-of", "2025-05-31", "--out", str(out)])
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out)
    assert list(scored.columns) == SCORE_COLUMNS and len(scored) > 0
    assert scored["reason_1"].notna().all()
    strict_yaml = tmp_path / "strict.yaml"
    strict_yaml.write_text(policy_file.read_text().replace("grace_days: 5", "grace_days: 0") + "company: acme\n")
    result = runner.invoke(app, ["score", str(data), "--as-of", "2025-05-31", "--out", str(out),
                                 "--config", str(strict_yaml)])
    assert result.exit_code == 1 and "retrain" in result.output
    result = runner.invoke(app, ["score", str(small_company), "--as-of", "2025-05-31", "--out", str(out)])
    assert result.exit_code == 1 and f"for company {small_company.name}" in result.output  # acme's are not its


def test_evaluate_logs_the_champions_beside_the_baselines(champions, small_loaded, small_company):
    from training.evaluate import _main, evaluate_champions

    late_table, timing_table = evaluate_champions(small_loaded, str(small_company), "2025-05-31",
                                                  ExampleConfig(every_days=28, holdout_days=63))
    assert {"champion", "customer_late_share", "logistic_regression"} == set(late_table.index)
    assert 0.5 < late_table.loc["champion", "auc"] <= 1 and late_table.loc["champion", "n"] > 0
    assert {"champion", "due_plus_average_delay"} == set(timing_table.index)
    run = mlflow.search_runs(experiment_names=[tracking.LATE_PAYMENT], order_by=["start_time DESC"]).iloc[0]
    assert run["tags.kind"] == "evaluation" and run["params.as_of"] == "2025-05-31"
    assert run["metrics.auc_champion"] == pytest.approx(late_table.loc["champion", "auc"])
    with pytest.raises(SystemExit, match="cannot be used"):
        _main([str(small_company / "missing-folder")])


def test_evaluate_without_a_champion_says_so(store, small_company):
    from training.evaluate import _main

    with pytest.raises(SystemExit, match="run `likvid train DATA` first"):
        _main([str(small_company)])


def test_scratch_store_is_its_own_store_and_leaves_nothing_behind(tmp_path, monkeypatch):
    from training.tracking import scratch_store, tracking_uri

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///users.db")
    with scratch_store() as folder:
        assert Path.cwd() == folder and tracking_uri() == f"sqlite:///{folder}/mlflow.db"
    assert Path.cwd() == tmp_path and tracking_uri() == "sqlite:///users.db" and not folder.exists()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with scratch_store():
        pass
    assert tracking_uri() == "sqlite:///mlflow.db"  # the default again


def test_a_companys_forecast_is_the_same_whether_or_not_another_company_trained_after_it(
        store, small_loaded, small_company, tmp_path):
    from features.load import validate
    from features.policy import load_policy

    train(small_loaded, str(small_company), cfg=FAST)
    runner = CliRunner()

    def forecast_a(name: str) -> pd.DataFrame:
        out = tmp_path / name
        result = runner.invoke(app, ["forecast", str(small_company), "--as-of", "2025-05-31", "--weeks", "8",
                                     "--paths", "200", "--out", str(out)])
        assert result.exit_code == 0, result.output
        return pd.read_csv(out)

    before = forecast_a("before.csv")
    other = tmp_path / "beta"  # another company in the same store, with other models (five days' grace)
    shutil.copytree(small_company, other)
    (other / "likvid.yaml").write_text((other / "likvid.yaml").read_text() + "\ngrace_days: 5\n")
    policy = load_policy(other)
    cfg = TrainConfig.from_policy(policy, examples=FAST.examples, cash_paths=FAST.cash_paths)
    b = train(validate(other).company, str(other), cfg=cfg, policy=policy)
    assert b.company == "beta" and all(d.promote for d in b.decisions.values())
    pd.testing.assert_frame_equal(forecast_a("after.csv"), before)
    assert tracking.load_champion(tracking.LATE_PAYMENT, small_company.name).features["grace_days"] == 0


# --- the local copy of the champions ------------------------------------------------------------------------


def _no_store(*_, **__):
    raise AssertionError("the store was asked")


def test_a_champion_is_read_from_its_local_copy_until_the_registry_moves(store, monkeypatch):
    tracking.run_recipe(FakeFamily(0.1), None, "acme", "d", AT)
    assert tracking.load_champion("likvid-fake", "acme").model.bias == 0.1  # from the store; kept
    with monkeypatch.context() as m:  # neither the registry nor the artifacts are read again
        m.setattr(tracking, "connect", _no_store)
        m.setattr(mlflow.pyfunc, "load_model", _no_store)
        champion = tracking.load_champion("likvid-fake", "acme")
    assert champion.model.bias == 0.1 and champion.version == "1"
    tracking.run_recipe(FakeFamily(0.05), None, "acme", "d", AT)  # better: promoted to v2
    with monkeypatch.context() as m, pytest.raises(AssertionError, match="the store was asked"):
        m.setattr(mlflow.pyfunc, "load_model", _no_store)
        tracking.load_champion("likvid-fake", "acme")  # v2 has no copy yet: v1's is never served for it
    champion = tracking.load_champion("likvid-fake", "acme")
    assert champion.model.bias == 0.05 and champion.version == "2"


def test_a_kept_copy_that_is_not_whole_or_of_another_run_is_not_read(store, monkeypatch):
    tracking.run_recipe(FakeFamily(0.1), None, "acme", "d", AT)
    tracking.load_champion("likvid-fake", "acme")
    [kept] = [p for p in tracking.model_cache_folder().iterdir() if p.is_dir()]
    (kept / "model.joblib").write_bytes(b"not a model")
    assert tracking.load_champion("likvid-fake", "acme").model.bias == 0.1  # from the store again
    # A store recreated gives version 1 again, of another run: another copy, never this one.
    mv = tracking._champion_version("acme.likvid-fake")
    assert kept.name == tracking._version_key(mv)
    assert tracking._version_key(dataclasses.replace(mv, run_id="another run")) != kept.name
    monkeypatch.setenv(tracking.MODEL_CACHE_ENV, "off")
    assert tracking.model_cache_folder() is None
    assert tracking.load_champion("likvid-fake", "acme").model.bias == 0.1


def test_scoring_imports_no_mlflow_and_the_registry_pickles_still_find_likvid_model():
    code = ("import sys, serving.cli, training.scoring, training.collections; "
            "assert 'mlflow' not in sys.modules, 'mlflow imported'; "
            "from training.tracking import LikvidModel; assert LikvidModel.__qualname__ == 'LikvidModel'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


COUNTED: list = []


def counted_output(model: Fitted, frame: pd.DataFrame) -> pd.DataFrame:
    """``fake_output`` that counts its calls (module-level: the logged model pickles it by reference)."""
    COUNTED.append(len(frame))
    return fake_output(model, frame)


def test_logging_a_model_answers_its_input_example_once_and_the_logged_model_still_predicts(store):
    COUNTED.clear()
    example = pd.DataFrame({"x": [1.0, 2.0]})
    tracking.connect()
    mlflow.set_experiment("likvid-fake")
    with mlflow.start_run():
        info = tracking.log_model(Fitted(0.1, AT), "likvid-fake", "acme", example, counted_output)
    assert COUNTED == [2]  # MLflow's log-time check of the example was handed the answer, not asked again
    assert not tracking._ANSWERED
    frame = mlflow.pyfunc.load_model(info.model_uri).predict(example)
    assert COUNTED == [2, 2] and frame.equals(fake_output(Fitted(0.1, AT), example))
