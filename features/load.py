"""Read a data folder (csv or parquet, with an optional column mapping) and validate it.

Problems are of two sorts. Errors (a missing required table or column, a table in both
formats, an unreadable file, a bad mapping) raise ``ContractError`` and stop the run.
Row-level problems set the row aside in a rejects report ``table, row, column, problem``
(``row`` is the 1-based data row of that table's file); every other row is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import yaml

from features.contract import TABLES, Column, Inv, Ord, Table, dtype_of, empty_frame, schema

REJECT_COLUMNS = ["table", "row", "column", "problem"]
SUMMARY_COLUMNS = ["table", "file", "rows_read", "rows_used", "rows_rejected"]
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
# Links are checked after the tables they point to, so a reference to a rejected row is caught.
_ORDER = ("customers", "orders", "invoices", "purchase_orders", "bills",
          "cash_transactions", "cash_balances", "inventory")


class ContractError(Exception):
    """The data cannot be used at all; ``problems`` lists why, one readable line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class Company:
    """A company's validated tables: only used rows, typed, every contract column present.

    ``supplied`` says which columns the data really had (the rest were filled with defaults),
    so that a feature can tell "no delivery channel given" from "all paper".
    The index of each table is the row's 1-based number in its file.
    """

    tables: dict[str, pd.DataFrame]
    supplied: dict[str, frozenset[str]] = field(default_factory=dict)

    def has(self, table: str) -> bool:
        return table in self.tables

    def __getitem__(self, table: str) -> pd.DataFrame:
        return self.tables[table]

    def get(self, table: str) -> pd.DataFrame:
        """The table, or an empty typed table when the data has none."""
        return self.tables[table] if table in self.tables else empty_frame(TABLES[table])

    def replace(self, **tables: pd.DataFrame) -> Company:
        return Company({**self.tables, **tables}, self.supplied)


@dataclass
class Validation:
    company: Company
    rejects: pd.DataFrame
    summary: pd.DataFrame
    ignored: dict[str, list[str]]


def read_mapping(path: str | Path | None) -> dict[str, dict[str, str]]:
    """Read a mapping YAML ``table: {our_name: their_name}`` and check it names real tables and columns."""
    if path is None:
        return {}
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ContractError([f"mapping {path}: unreadable ({e})"]) from e
    problems = []
    if not isinstance(raw, dict):
        raise ContractError([f"mapping {path}: expected `table: {{our_name: their_name}}`"])
    mapping: dict[str, dict[str, str]] = {}
    for table, cols in raw.items():
        if table not in TABLES:
            problems.append(f"mapping {path}: unknown table '{table}' (known: {', '.join(TABLES)})")
            continue
        if not isinstance(cols, dict):
            problems.append(f"mapping {path}: table '{table}' must map our column names to yours")
            continue
        for ours, theirs in cols.items():
            if ours not in TABLES[table].names:
                problems.append(f"mapping {path}: {table} has no column '{ours}' "
                                f"(columns: {', '.join(TABLES[table].names)})")
            elif not isinstance(theirs, str) or not theirs:
                problems.append(f"mapping {path}: {table}.{ours} must name one of your columns")
        mapping[table] = {str(k): str(v) for k, v in cols.items()}
    if problems:
        raise ContractError(problems)
    return mapping


def find_files(folder: str | Path) -> dict[str, Path]:
    """The file of each contract table in a folder; errors for missing required tables and duplicates."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ContractError([f"{folder}: no such data folder"])
    found, problems = {}, []
    for name, table in TABLES.items():
        files = [folder / f"{name}.{ext}" for ext in ("csv", "parquet") if (folder / f"{name}.{ext}").is_file()]
        if len(files) > 1:
            problems.append(f"{name}: both {name}.csv and {name}.parquet exist; keep one")
        elif files:
            found[name] = files[0]
        elif table.required:
            problems.append(f"{name}: required table missing (expected {name}.csv or {name}.parquet in {folder})")
    if problems:
        raise ContractError(problems)
    return found


def _read(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig")
        else:
            frame = pd.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - any reader failure means the file is unreadable
        raise ContractError([f"{path.stem}: unreadable file {path.name} ({type(e).__name__}: {e})"]) from e
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    return frame


def _rename(frame: pd.DataFrame, table: Table, mapping: dict[str, str], path: Path) -> pd.DataFrame:
    problems = []
    for ours, theirs in mapping.items():
        if theirs not in frame.columns:
            problems.append(f"{table.name}: the mapping names column '{theirs}' for {ours}, "
                            f"but {path.name} has no such column")
    if problems:
        raise ContractError(problems)
    return frame.rename(columns={theirs: ours for ours, theirs in mapping.items()})


def _as_text(series: pd.Series) -> pd.Series:
    """Values as stripped strings, with empty cells as NA; integral floats lose their '.0'."""
    if pd.api.types.is_float_dtype(series):
        whole = series.notna() & (series % 1 == 0)
        text = series.astype(object).where(~whole, series.where(~whole, 0).astype("int64").astype(str))
        series = text.where(series.notna(), None)
    out = series.astype("string").str.strip()
    return out.mask(out == "")


def _parse(raw: pd.Series, col: Column) -> tuple[pd.Series, pd.Series]:
    """Coerce one column to its kind. Returns the values and, per row, a problem text or NA."""
    problem = pd.Series(pd.NA, index=raw.index, dtype="string")
    if col.kind == "date" and pd.api.types.is_datetime64_any_dtype(raw):
        values = pd.to_datetime(raw).dt.tz_localize(None) if getattr(raw.dt, "tz", None) else raw
        values = values.dt.normalize().astype("datetime64[ns]")
        empty = values.isna()
    elif col.kind == "bool" and pd.api.types.is_bool_dtype(raw):
        values = raw.astype(pd.BooleanDtype())
        empty = values.isna()
    elif col.kind in ("money", "number") and pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = raw.astype("float64")
        empty = values.isna()
    else:
        text = _as_text(raw)
        empty = text.isna()
        if col.kind == "date":
            shaped = text.str.fullmatch(_ISO_DATE).fillna(False).astype(bool)
            values = pd.to_datetime(text.where(shaped), format="%Y-%m-%d", errors="coerce").astype("datetime64[ns]")
            bad = ~empty & values.isna()
            problem[bad] = "unparseable date '" + text[bad] + "' (expected YYYY-MM-DD)"
        elif col.kind in ("money", "number"):
            values = pd.to_numeric(text, errors="coerce").astype("float64")
            bad = ~empty & (values.isna() | ~np.isfinite(values.fillna(0)))
            problem[bad] = "not a number: '" + text[bad] + "'"
        elif col.kind == "bool":
            low = text.str.lower()
            values = pd.Series(pd.NA, index=raw.index, dtype=pd.BooleanDtype())
            values[low.isin(_TRUE).fillna(False).astype(bool)] = True
            values[low.isin(_FALSE).fillna(False).astype(bool)] = False
            bad = ~empty & values.isna()
            problem[bad] = "not true/false: '" + text[bad] + "'"
        elif col.kind == "category":
            values = text.str.lower()
        else:
            values = text
    if not col.nullable:
        problem[empty & problem.isna()] = "missing value"
    return values, problem


def _long(table: str, column: str, problem: pd.Series) -> pd.DataFrame:
    problem = problem.dropna()
    return pd.DataFrame({"table": table, "row": problem.index.astype("int64"),
                         "column": column, "problem": problem.astype(str).to_numpy()})


def _schema_problems(frame: pd.DataFrame, table: Table) -> list[pd.DataFrame]:
    try:
        schema(table).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as e:
        cases = e.failure_cases.dropna(subset=["index"])
        return [pd.DataFrame({
            "table": table.name,
            "row": cases["index"].astype("int64").to_numpy(),
            "column": cases["column"].astype(str).to_numpy(),
            "problem": (cases["check"].astype(str) + " (got " + cases["failure_case"].astype(str) + ")").to_numpy(),
        })]
    return []


def _rule_problems(frame: pd.DataFrame, table: Table) -> list[pd.DataFrame]:
    out = []
    for rule in table.rules:
        present = frame[list(rule.columns)].notna().all(axis=1)
        broken = present & ~rule.ok(frame).fillna(True).astype(bool)
        out.append(_long(table.name, rule.column, pd.Series(rule.problem, index=frame.index[broken], dtype="string")))
    return out


def _future_problems(frame: pd.DataFrame, table: Table, today: pd.Timestamp) -> list[pd.DataFrame]:
    """Facts learned later (payments, disputes, deliveries) cannot be dated after today."""
    out = []
    for name in table.learned:
        late = frame[name] > today
        text = name + " " + frame.loc[late, name].dt.strftime("%Y-%m-%d") + f" is after today ({today:%Y-%m-%d})"
        out.append(_long(table.name, name, text.astype("string")))
    return out


def _duplicate_problems(frame: pd.DataFrame, table: Table, clean: pd.Series) -> pd.DataFrame:
    """Among rows with no other problem, a repeated key is rejected; its first row is kept."""
    if not table.key:
        return _long(table.name, "", pd.Series(dtype="string"))
    keys = frame.loc[clean, list(table.key)]
    dup = keys.duplicated(keep="first")
    if not dup.any():
        return _long(table.name, "", pd.Series(dtype="string"))
    first = keys.reset_index().groupby(list(table.key), dropna=False)["row"].transform("first")
    first.index = keys.index
    label = " + ".join(table.key)
    values = keys[dup].astype(str).agg(" / ".join, axis=1)
    text = "duplicated " + label + " '" + values + "' (first in row " + first[dup].astype(str) + ")"
    return _long(table.name, table.key[0], text.astype("string"))


def _link_problems(frame: pd.DataFrame, table: Table, used: dict[str, pd.DataFrame],
                   rejected_keys: dict[str, set[str]]) -> list[pd.DataFrame]:
    out = []
    for link in table.links:
        if link.table not in used:  # the linked table is absent: nothing to check against
            continue
        target = used[link.table].set_index(link.to)
        values = frame[link.column]
        present = values.notna()
        known = values.isin(target.index)
        missing = present & ~known
        rejected = missing & values.isin(rejected_keys.get(link.table, set()))
        text = pd.Series(pd.NA, index=frame.index, dtype="string")
        text[missing & ~rejected] = ("unknown " + link.column + " '" + values[missing & ~rejected]
                                     + f"' (not in {link.table})")
        text[rejected] = (link.column + " '" + values[rejected]
                          + f"' refers to a rejected row of {link.table}")
        out.append(_long(table.name, link.column, text))
        for ours, theirs in link.same:
            linked = target[theirs].reindex(values[present & known]).to_numpy()
            differs = pd.Series(False, index=frame.index)
            differs[present & known] = (frame.loc[present & known, ours].to_numpy() != linked)
            text = (ours + " '" + frame.loc[differs, ours] + "' differs from " + link.table + " "
                    + values[differs] + "'s " + theirs + " '"
                    + target[theirs].reindex(values[differs]).astype(str).to_numpy() + "'")
            out.append(_long(table.name, ours, text.astype("string")))
    return out


def _defaults(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    """Apply the contract's defaults to absent values."""
    if table.name == Inv.TABLE:
        paid = frame[Inv.PAID].notna() & frame[Inv.PAID_AMOUNT].isna()
        frame.loc[paid, Inv.PAID_AMOUNT] = frame.loc[paid, Inv.AMOUNT]
    if table.name == Ord.TABLE:
        frame[Ord.CANCELLED] = frame[Ord.CANCELLED].fillna(False)
    return frame[table.names]


def validate(folder: str | Path, mapping: str | Path | dict | None = None,
             today: pd.Timestamp | str | None = None) -> Validation:
    """Load and validate a data folder; raise ``ContractError`` on errors, set bad rows aside."""
    today = pd.Timestamp(today if today is not None else pd.Timestamp.today()).normalize()
    maps = mapping if isinstance(mapping, dict) else read_mapping(mapping)
    files = find_files(folder)
    frames, raw_counts, supplied, ignored, problems = {}, {}, {}, {}, []
    for name, path in files.items():
        table = TABLES[name]
        frame = _rename(_read(path), table, maps.get(name, {}), path)
        missing = [c for c in table.required_columns if c not in frame.columns]
        if missing:
            problems.append(f"{name}: required column{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(missing)} missing from {path.name}")
            continue
        ignored[name] = [c for c in frame.columns if c not in table.names]
        supplied[name] = frozenset(c for c in frame.columns if c in table.names)
        frames[name], raw_counts[name] = frame, len(frame)
    if problems:
        raise ContractError(problems)

    used, rejects, rejected_keys = {}, [], {}
    for name in [n for n in _ORDER if n in frames]:
        table, raw = TABLES[name], frames[name]
        typed = pd.DataFrame(index=raw.index)
        found = []
        for col in table.columns:
            if col.name in raw.columns:
                typed[col.name], problem = _parse(raw[col.name], col)
                found.append(_long(name, col.name, problem))
            else:
                typed[col.name] = pd.Series(None, index=raw.index, dtype=object).astype(dtype_of(col))
        found += _schema_problems(typed, table)
        found += _rule_problems(typed, table)
        found += _future_problems(typed, table, today)
        found += _link_problems(typed, table, used, rejected_keys)
        found = pd.concat(found, ignore_index=True)
        clean = ~typed.index.isin(found["row"])
        found = pd.concat([found, _duplicate_problems(typed, table, pd.Series(clean, index=typed.index))],
                          ignore_index=True)
        bad = typed.index.isin(found["row"])
        if table.key and len(table.key) == 1:
            rejected_keys[name] = set(typed.loc[bad, table.key[0]].dropna()) - set(typed.loc[~bad, table.key[0]])
        used[name] = _defaults(typed.loc[~bad].copy(), table)
        rejects.append(found)

    reject_frame = (pd.concat(rejects, ignore_index=True) if rejects else pd.DataFrame(columns=REJECT_COLUMNS))
    reject_frame = reject_frame.drop_duplicates().sort_values(["table", "row", "column"], kind="stable")
    summary = pd.DataFrame([
        {"table": n, "file": files[n].name, "rows_read": raw_counts[n], "rows_used": len(used[n]),
         "rows_rejected": raw_counts[n] - len(used[n])}
        for n in _ORDER if n in used
    ], columns=SUMMARY_COLUMNS)
    return Validation(Company(used, supplied), reject_frame.reset_index(drop=True), summary, ignored)


def load(folder: str | Path, mapping: str | Path | dict | None = None) -> Company:
    """The usable company in a folder (rejected rows left out; see ``validate`` for the report)."""
    return validate(folder, mapping).company


__all__ = ["Company", "ContractError", "Validation", "find_files", "load", "read_mapping", "validate"]
