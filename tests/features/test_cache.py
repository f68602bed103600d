"""The validated company cached as Parquet beside the data: read back unchanged, never stale."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features import cache, invoices, load
from features.asof import as_of, last_known_date
from features.load import validate
from serving.cli import app
from tests.conftest import TODAY, tiny_customers, tiny_invoices, tiny_orders, write_tables

LATER = "2025-08-01"


@pytest.fixture
def calls(monkeypatch) -> list[Path]:
    """The folders really validated (a cache hit adds none)."""
    seen: list[Path] = []
    real = load._validate

    def counted(folder, *args, **kwargs):
        seen.append(folder)
        return real(folder, *args, **kwargs)

    monkeypatch.setattr(load, "_validate", counted)
    return seen


def _with_a_reject(folder: Path) -> Path:
    """The tiny company plus an invoice of an unknown customer (a row reject)."""
    bad = {**tiny_invoices()[0], "invoice_id": "I9", "customer_id": "NOPE", "order_id": ""}
    return write_tables(folder, customers=tiny_customers(), invoices=[*tiny_invoices(), bad], orders=tiny_orders())


def assert_same(a: load.Validation, b: load.Validation) -> None:
    assert list(a.company.tables) == list(b.company.tables)
    for name in a.company.tables:
        pd.testing.assert_frame_equal(a.company[name], b.company[name], check_exact=True)
        assert a.company[name].dtypes.to_dict() == b.company[name].dtypes.to_dict(), name
        assert a.company[name].index.dtype == b.company[name].index.dtype, name
    for frame in ("rejects", "summary", "diagnosis"):
        pd.testing.assert_frame_equal(getattr(a, frame), getattr(b, frame), check_exact=True)
    assert (a.company.supplied, a.company.base_currency) == (b.company.supplied, b.company.base_currency)
    assert (a.ignored, a.detected, a.mapping) == (b.ignored, b.detected, b.mapping)


def test_a_generated_company_reads_back_from_the_cache_identical_dtypes_included(small_company, tmp_path, calls):
    folder = tmp_path / "company"
    shutil.copytree(small_company, folder, ignore=shutil.ignore_patterns(cache.CACHE_DIR))
    fresh = validate(folder, today=TODAY)
    hit = validate(folder, today=TODAY)
    assert len(calls) == 1 and (folder / cache.CACHE_DIR).is_dir()
    assert_same(hit, fresh)
    assert_same(hit, validate(folder, today=TODAY, cache=False))
    assert {"invoices", "payments", "credit_notes", "fx_rates"} <= set(hit.company.tables)


def test_rejects_and_diagnosis_survive_a_hit(tmp_path, calls):
    folder = _with_a_reject(tmp_path / "d")
    fresh = validate(folder, today=TODAY)
    hit = validate(folder, today=TODAY)
    assert len(calls) == 1
    assert len(hit.rejects) == 1 and "unknown customer_id 'NOPE'" in hit.rejects["problem"].iloc[0]
    assert hit.diagnosis["rows"].tolist() == [1]
    assert_same(hit, fresh)


def test_likvid_validate_prints_the_same_report_from_the_cache(tmp_path):
    folder = _with_a_reject(tmp_path / "d")
    runner = CliRunner()
    first = runner.invoke(app, ["validate", str(folder), "--rejects", str(tmp_path / "r1.csv")])
    second = runner.invoke(app, ["validate", str(folder), "--rejects", str(tmp_path / "r2.csv")])
    assert first.exit_code == second.exit_code == 0
    def report(output: str) -> list[str]:  # without the progress spinner, whose frame depends on timing
        return [line for line in output.splitlines() if "Validating" not in line]

    assert report(second.output.replace("r2.csv", "r1.csv")) == report(first.output)
    assert "rows set aside" in first.output and "unknown customer_id" in first.output
    assert (tmp_path / "r1.csv").read_text() == (tmp_path / "r2.csv").read_text()
    assert "NOPE" in (tmp_path / "r2.csv").read_text()


def _rewrite_keeping_size_and_mtime(path: Path, old: str, new: str) -> None:
    assert len(old) == len(new)
    stat = path.stat()
    path.write_text(path.read_text().replace(old, new, 1))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns


@pytest.mark.parametrize("change", ["size", "mtime", "content", "new table", "mapping", "format", "config",
                                    "base currency", "contract version"])
def test_each_part_of_the_key_invalidates(tiny, calls, monkeypatch, change):
    invoices = tiny / "invoices.csv"
    before = validate(tiny, today=TODAY)
    mapping, policy = None, None
    if change == "size":
        invoices.write_text(invoices.read_text().replace("50.5", "50.75"))
    elif change == "mtime":
        os.utime(invoices, ns=(invoices.stat().st_atime_ns, invoices.stat().st_mtime_ns + 10**9))
    elif change == "content":
        _rewrite_keeping_size_and_mtime(invoices, "50.5", "60.5")
    elif change == "new table":
        write_tables(tiny, fx_rates=[{"date": "2025-01-01", "currency": "EUR", "rate": "1.1"}])
    elif change == "mapping":
        mapping = {"invoices": {"amount": "amount"}}
    elif change == "format":
        mapping = {"format": {"delimiter": ","}}
    elif change == "config":
        (tiny / "likvid.yaml").write_text("grace_days: 3\n")
    elif change == "base currency":
        from features.policy import Policy

        policy = Policy(base_currency="EUR")
    else:
        monkeypatch.setattr(cache, "contract_version", lambda: "another contract")
    after = validate(tiny, mapping, today=TODAY, policy=policy)
    assert len(calls) == 2, change  # validated again, not read from the stale entry
    if change in ("size", "content"):
        amounts = after.company["invoices"].set_index("invoice_id")["amount"]
        assert amounts["I2"] != before.company["invoices"].set_index("invoice_id")["amount"]["I2"]
    validate(tiny, mapping, today=TODAY, policy=policy)
    assert len(calls) == 2, "the new entry is a hit in its turn"


def test_an_entry_holds_on_later_days_unless_a_date_was_rejected_as_after_today(tiny, tmp_path, calls):
    validate(tiny, today=TODAY)
    validate(tiny, today=LATER)
    assert len(calls) == 1, "nothing was in the future then, nothing is now"
    validate(tiny, today="2025-02-10")
    assert len(calls) == 2, "an earlier day can reject dates the entry used"

    future = write_tables(tmp_path / "future", customers=tiny_customers(), orders=tiny_orders(),
                          invoices=[*tiny_invoices()[:2], {**tiny_invoices()[2], "paid_date": "2025-07-15"}])
    seen = len(calls)
    then = validate(future, today=TODAY)
    assert then.rejects["problem"].str.contains("after today").any()
    validate(future, today=TODAY)
    assert len(calls) == seen + 1
    later = validate(future, today=LATER)
    assert len(calls) == seen + 2 and later.rejects.empty, "the payment has happened by the later day"


def test_a_cache_that_cannot_be_read_is_validated_again(tiny, calls):
    validate(tiny, today=TODAY)
    (entry,) = (tiny / cache.CACHE_DIR).iterdir()
    (entry / "table.invoices.parquet").write_bytes(b"not parquet")
    again = validate(tiny, today=TODAY)
    assert len(calls) == 2 and len(again.company["invoices"]) == 3


def test_old_entries_are_pruned(tiny):
    for n in range(cache.KEEP + 2):
        (tiny / "likvid.yaml").write_text(f"grace_days: {n}\n")
        validate(tiny, today=TODAY)
    assert len([p for p in (tiny / cache.CACHE_DIR).iterdir() if p.is_dir()]) == cache.KEEP


def test_a_command_s_policy_from_the_folder_and_no_policy_share_one_entry(tiny, calls):
    """A command validates with the policy it read from DATA/likvid.yaml; the cash model's pyfunc (at registration
    and when served) validates the same folder with no policy: the base currency is the same, and so is the
    entry (it was a second full validation of the folder at every `likvid train`)."""
    from features.policy import load_policy

    (tiny / "likvid.yaml").write_text("base_currency: EUR\n")
    first = validate(tiny, today=TODAY, policy=load_policy(tiny))
    assert_same(first, validate(tiny, today=TODAY))
    assert len(calls) == 1


# --- state derived from the validated company -----------------------------------------------------------------


def _assert_same_history(a, b) -> None:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y, check_exact=True)
        elif isinstance(x, pd.Series):
            pd.testing.assert_series_equal(x, y, check_exact=True)
        elif isinstance(x, pd.Index):
            assert x.equals(y), f.name
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind in "fmM"), f.name
        elif f.name == "view":
            assert list(x.tables) == list(y.tables) and x.date == y.date
            for name in x.tables:
                pd.testing.assert_frame_equal(x[name], y[name], check_exact=True)
        elif isinstance(x, tuple):
            assert np.array_equal(x[0], y[0]) and x[1].equals(y[1]), f.name
        else:
            assert x == y, f.name


def _validated_copy(small_company: Path, tmp_path: Path):
    """A copy of the small company's folder without its cache, validated once (its entry written): (folder,
    company)."""
    folder = tmp_path / "company"
    shutil.copytree(small_company, folder, ignore=shutil.ignore_patterns(cache.CACHE_DIR))
    return folder, validate(folder, today=TODAY).company


def test_the_history_at_the_last_known_date_is_kept_beside_the_validation_and_read_back_the_same(
        small_company, tmp_path, monkeypatch):
    folder, company = _validated_copy(small_company, tmp_path)
    at = last_known_date(company)
    fresh = invoices.history(validate(folder, today=TODAY, cache=False).company, at)  # no entry: nothing kept
    first = invoices.history(company, at)
    [kept] = company.cache.glob("history-*.pkl")
    computed = []
    monkeypatch.setattr(invoices, "_settled_history", lambda *a: computed.append(a) or pytest.fail("recomputed"))
    again = invoices.history(validate(folder, today=TODAY).company, at)  # a second command on the folder
    assert not computed
    for other in (first, again):
        _assert_same_history(other, fresh)
    x = invoices.invoice_features(company, at, known=again)
    pd.testing.assert_frame_equal(x, invoices.invoice_features(company, at, known=fresh), check_exact=True)
    monkeypatch.undo()
    # Another date, other settings or other code: computed, and only the last date is kept.
    before = at - pd.Timedelta(days=30)
    _assert_same_history(invoices.history(company, before), invoices.history(validate(folder, cache=False,
                                                                                       today=TODAY).company, before))
    invoices.history(company, at, invoices.FeatureConfig(grace_days=3))
    monkeypatch.setattr(cache, "features_version", lambda: "other code")
    invoices.history(company, at)
    assert len(list(company.cache.glob("history-*.pkl"))) == cache.DERIVED_KEEP
    # A file that is not whole is computed again.
    monkeypatch.undo()
    if kept.exists():
        kept.write_bytes(b"not a history")
    _assert_same_history(invoices.history(company, at), fresh)


def test_the_ledger_pass_is_kept_beside_the_validation_and_read_back_the_same(small_company, tmp_path, monkeypatch):
    folder, company = _validated_copy(small_company, tmp_path)
    computed = invoices._ledger_pass(company)
    invoices.ledger_pass(company)
    assert len(list(company.cache.glob("ledger-pass-*.pkl"))) == 1
    monkeypatch.setattr(invoices, "_ledger_pass", lambda *_: pytest.fail("computed again"))
    kept = invoices.ledger_pass(validate(folder, today=TODAY).company)
    for f in dataclasses.fields(computed):
        x, y = getattr(computed, f.name), getattr(kept, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind in "fmM"), f.name
        else:
            assert x.equals(y) if isinstance(x, pd.Index) else x == y, f.name
    # A view, or a company with no entry, keeps nothing and computes its own.
    monkeypatch.undo()
    invoices.ledger_pass(validate(folder, today=TODAY, cache=False).company)
    assert len(list(company.cache.glob("ledger-pass-*.pkl"))) == 1


def test_customer_features_at_the_last_known_date_are_kept_and_read_back_the_same(small_company, tmp_path,
                                                                                     monkeypatch):
    from features import customers

    folder, company = _validated_copy(small_company, tmp_path)
    at = last_known_date(company)
    fresh = customers.customer_features(validate(folder, today=TODAY, cache=False).company, at)
    customers.customer_features(company, at)
    assert len(list(company.cache.glob("customer-features-*.pkl"))) == 1
    monkeypatch.setattr(customers, "_customer_features", lambda *_: pytest.fail("computed again"))
    pd.testing.assert_frame_equal(customers.customer_features(validate(folder, today=TODAY).company, at), fresh,
                                  check_exact=True)
    monkeypatch.undo()
    before = at - pd.Timedelta(days=91)  # another date: computed, not kept
    pd.testing.assert_frame_equal(customers.customer_features(company, before),
                                  customers.customer_features(validate(folder, today=TODAY, cache=False).company,
                                                              before), check_exact=True)
    assert len(list(company.cache.glob("customer-features-*.pkl"))) == 1
    # Asked to keep it (a read command's look-back day), another date is kept too and read back the same.
    kept = customers.customer_features(company, before, keep=True)
    assert len(list(company.cache.glob("customer-features-*.pkl"))) == 2
    monkeypatch.setattr(customers, "_customer_features", lambda *_: pytest.fail("computed again"))
    pd.testing.assert_frame_equal(customers.customer_features(validate(folder, today=TODAY).company, before,
                                                              keep=True), kept, check_exact=True)


def test_a_file_s_hash_is_kept_by_its_identity_and_taken_again_when_it_changes(tiny, monkeypatch):
    hashed: list[str] = []
    real_hash, real_now = cache.file_hash, cache.time.time_ns
    monkeypatch.setattr(cache, "file_hash", lambda path: hashed.append(path.name) or real_hash(path))
    validate(tiny, today=TODAY)
    validate(tiny, today=TODAY)
    files = len(load.find_files(tiny))
    assert len(hashed) == 2 * files, "files changed moments ago are hashed every time (a write could hide in the tick)"

    hashed.clear()
    monkeypatch.setattr(cache.time, "time_ns", lambda: real_now() + 10 * cache.RACY_SECONDS * 10**9)
    validate(tiny, today=TODAY)
    before = validate(tiny, today=TODAY)
    assert len(hashed) == files, "hashed once, then known by the files' identity"

    hashed.clear()
    time.sleep(0.05)  # past the file system clock's tick: the write moves the file's ctime
    _rewrite_keeping_size_and_mtime(tiny / "invoices.csv", "50.5", "60.5")
    after = validate(tiny, today=TODAY)
    assert hashed == ["invoices.csv"]
    amounts = [v.company["invoices"].set_index("invoice_id")["amount"]["I2"] for v in (before, after)]
    assert amounts[0] != amounts[1]


def test_a_cached_validation_reads_back_without_importing_pandera(tiny):
    validate(tiny, today=TODAY)
    code = ("import sys; from features.load import validate; "
            f"validate({str(tiny)!r}, today={TODAY!r}); print('pandera' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False", "pandera is for validating a folder, not for reading one back"


def test_the_open_orders_at_the_last_known_date_are_kept_and_read_back_the_same(small_company, tmp_path,
                                                                               monkeypatch):
    from features import cash

    folder, company = _validated_copy(small_company, tmp_path)
    at = last_known_date(company)
    fresh = cash.open_orders(validate(folder, today=TODAY, cache=False).company, at)  # no entry: nothing kept
    assert len(fresh) > 0
    pd.testing.assert_frame_equal(cash.open_orders(company, at), fresh, check_exact=True)
    assert len(list(company.cache.glob("open-orders-*.pkl"))) == 1
    monkeypatch.setattr(cash, "_open_orders", lambda view: pytest.fail("recomputed"))
    again = cash.open_orders(validate(folder, today=TODAY).company, at)  # a second command on the folder
    pd.testing.assert_frame_equal(again, fresh, check_exact=True)
    monkeypatch.undo()
    before = at - pd.Timedelta(days=30)  # another date: computed, not kept, and from the view when given
    earlier = cash.open_orders(company, before)
    pd.testing.assert_frame_equal(cash.open_orders(company, before, as_of(company, before)), earlier)
    assert len(list(company.cache.glob("open-orders-*.pkl"))) == 1
