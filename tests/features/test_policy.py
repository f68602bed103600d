"""The likvid.yaml policy: defaults, overrides, and clear errors."""

from __future__ import annotations

import pytest

from features.policy import POLICY_FILE, Policy, PolicyError, load_policy, parse_policy


def test_defaults_when_no_file(tmp_path):
    policy = load_policy(tmp_path)
    assert policy == Policy()
    assert policy.cost_of_capital == 0.08 and policy.alerts.overdue_share == 0.08
    assert policy.bucket_names() == ["current", "1-30", "31-60", "61-90", "90+"]


def test_file_in_data_folder_overrides(tmp_path):
    (tmp_path / POLICY_FILE).write_text("cost_of_capital: 0.12\ncash_floor: 50000\naging_buckets: [15, 45]\n")
    policy = load_policy(tmp_path)
    assert policy.cost_of_capital == 0.12 and policy.cash_floor == 50000
    assert policy.bucket_names() == ["current", "1-15", "16-45", "45+"]
    assert [policy.bucket(d) for d in (0, 1, 15, 16, 45, 46)] == ["current", "1-15", "1-15", "16-45", "16-45", "45+"]


@pytest.mark.parametrize("values, names", [
    ({"cost_of_capital": "lots"}, "cost_of_capital"),
    ({"cost_of_capital": 3}, "cost_of_capital"),
    ({"aging_buckets": [60, 30]}, "aging_buckets"),
    ({"grades": {"bands": [{"grade": "AAA", "max_p_late": 0.5, "limit_months": 1}]}}, "grades.bands"),
    ({"dunning": {"steps": [{"from_days_overdue": 5, "action": "call"}]}}, "dunning.steps"),
    ({"unknown_setting": 1}, "unknown_setting"),
])
def test_bad_values_name_the_setting(values, names):
    with pytest.raises(PolicyError, match=names.replace(".", r"\.")):
        parse_policy(values)


def test_bad_yaml_and_missing_config(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grace_days: [unclosed")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(config=bad)
    with pytest.raises(PolicyError, match="no such configuration file"):
        load_policy(config=tmp_path / "missing.yaml")


def test_ladder_steps_at_their_boundaries():
    ladder = Policy().dunning
    assert [ladder.action(d) for d in (0, 1, 30, 31, 60, 61, 90, 91, 400)] == [
        "", "reminder", "reminder", "formal warning", "formal warning", "hold new orders and final notice",
        "hold new orders and final notice", "legal or collection agency", "legal or collection agency"]


def test_grades_from_p_late():
    grades = Policy().grades
    assert [grades.grade(p) for p in (0.0, 0.1, 0.11, 0.3, 0.5, 0.9)] == ["AAA", "AAA", "AA", "A", "B", "C"]
    assert grades.limit_months("C") == 0


def test_the_example_file_documents_every_setting_at_its_default():
    from pathlib import Path

    import yaml

    values = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / POLICY_FILE).read_text())
    assert parse_policy(values) == Policy()

    def names(model, prefix=""):
        out = set()
        for name in type(model).model_fields:
            out.add(prefix + name)
            if hasattr(type(getattr(model, name)), "model_fields"):
                out |= names(getattr(model, name), f"{prefix}{name}.")
        return out

    def keys(mapping, prefix=""):
        return {prefix + k for k in mapping} | {x for k, v in mapping.items() if isinstance(v, dict)
                                                 for x in keys(v, f"{prefix}{k}.")}

    assert names(Policy()) == keys(values)
