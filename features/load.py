"""Read a data folder (csv, parquet or xlsx, with an optional mapping file) and validate it.

Problems are of two sorts. Errors (a missing required table or column, a table in two formats, an
unreadable file, a bad mapping, an ambiguous number format, a required table with no usable row)
raise ``ContractError`` and stop the run. Row-level problems set the row aside in a rejects report
``table, row, column, problem`` (``row`` is the 1-based data row of that table's file); every other
row is used. ``Validation.diagnosis`` counts the rejects by table, column and kind of problem, with
examples and, where a pattern is recognisable, the format setting that would read them
(``features.formats`` says how a file's format is declared and detected).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pandas as pd

from features import cache as validation_cache
from features import parallel
from features.company import REJECT_COLUMNS, Company, ContractError
from features.contract import TABLES, Column, Inv, Ord, Table, dtype_of, schema
from features.formats import (
    EXTENSIONS,
    Format,
    FormatError,
    Mapping,
    cells_as_text,
    date_hint,
    decide_decimal,
    delimiter_hint,
    native_numbers,
    parse_dates,
    parse_mapping,
    parse_numbers,
    read_mapping_file,
    read_table,
)
from features.ledger import asked_base, is_in, positions, reconcile
from features.policy import POLICY_FILE, Policy

T, R = TypeVar("T"), TypeVar("R")

SUMMARY_COLUMNS = ["table", "file", "rows_read", "rows_used", "rows_rejected", "rows_knock_on"]
DIAGNOSIS_COLUMNS = ["table", "column", "problem", "rows", "examples", "hint", "knock_on"]
MAPPING_FILE = "mapping.yaml"  # found in the data folder, it is used when no mapping is given
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_KNOCK_ON = "refers to a rejected row"
_EXAMPLES = 3
# Links are checked after the tables they point to, so a reference to a rejected row is caught.
_ORDER = ("customers", "orders", "invoices", "purchase_orders", "bills",
          "cash_transactions", "cash_balances", "inventory", "payments", "credit_notes", "actions", "fx_rates")


@dataclass
class Validation:
    """What validating a folder found.

    ``detected``: per table, the format settings found without being declared (delimiter, encoding,
    decimal, sheet). ``diagnosis``: the rejects counted by table, column and problem (DIAGNOSIS_COLUMNS),
    knock-on rejects (rows rejected only because the row they refer to was) in rows of their own.
    ``mapping``: the mapping file used, if any (given, or found in the folder).
    """

    company: Company
    rejects: pd.DataFrame
    summary: pd.DataFrame
    ignored: dict[str, list[str]]
    detected: dict[str, dict[str, str]] = field(default_factory=dict)
    diagnosis: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DIAGNOSIS_COLUMNS))
    mapping: str | None = None


def read_mapping(path: str | Path | None) -> Mapping:
    """Read a mapping YAML (``table: {our_name: their_name}`` and an optional ``format:``) and check it.

    The result indexes like the old dict (``mapping["invoices"]`` is the rename of that table) and
    carries each table's ``Format``.
    """
    if path is None:
        return Mapping({})
    try:
        return read_mapping_file(path)
    except FormatError as e:
        raise ContractError(e.problems) from e


def _resolve_mapping(folder: Path, mapping: str | Path | dict | Mapping | None) -> Mapping:
    """The mapping to use: the one given (file, dict shaped like the file, or read), else the folder's own."""
    if isinstance(mapping, Mapping):
        return mapping
    if isinstance(mapping, dict):
        try:
            return parse_mapping(mapping, "mapping")
        except FormatError as e:
            raise ContractError(e.problems) from e
    if mapping is None and (folder / MAPPING_FILE).is_file():
        mapping = folder / MAPPING_FILE
    return read_mapping(mapping)


def find_files(folder: str | Path) -> dict[str, Path]:
    """The file of each contract table in a folder; errors for missing required tables and duplicates."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ContractError([f"{folder}: no such data folder"])
    found, problems = {}, []
    expected = " or ".join(f"{{name}}.{ext}" for ext in EXTENSIONS)
    for name, table in TABLES.items():
        files = [folder / f"{name}.{ext}" for ext in EXTENSIONS if (folder / f"{name}.{ext}").is_file()]
        if len(files) > 1:
            problems.append(f"{name}: both {' and '.join(f.name for f in files)} exist; keep one")
        elif files:
            found[name] = files[0]
        elif table.required:
            problems.append(f"{name}: required table missing (expected {expected.format(name=name)} in {folder})")
    if problems:
        raise ContractError(problems)
    return found


def _rename(frame: pd.DataFrame, table: Table, mapping: dict[str, str], path: Path,
            detected: dict[str, str]) -> pd.DataFrame:
    problems = []
    hint = ""
    if "encoding" in detected:
        hint = (f" (its encoding was detected as {detected['encoding']}, not declared: if letters look wrong, "
                f"declare format: encoding, e.g. cp1252)")
    elif len(frame.columns) == 1:
        hint = delimiter_hint(str(frame.columns[0]), detected.get("delimiter", ","))
        hint = f" (the header was read as one column{hint})" if hint else ""
    for ours, theirs in mapping.items():
        if theirs not in frame.columns:
            problems.append(f"{table.name}: the mapping names column '{theirs}' for {ours}, "
                            f"but {path.name} has no such column{hint}")
    if problems:
        raise ContractError(problems)
    renamed = frame.rename(columns={theirs: ours for ours, theirs in mapping.items()})
    clash = renamed.columns[renamed.columns.duplicated()]
    if len(clash):
        raise ContractError([f"{table.name}: the mapping renames a column to '{c}', which {path.name} also has; "
                             f"map only one" for c in clash])
    return renamed


# A problem per row of one column: its text, its kind (the same for every row of a cause) and the value shown.
@dataclass
class _Found:
    problem: pd.Series
    kind: pd.Series


def _empty_found(index: pd.Index) -> _Found:
    return _Found(pd.Series(pd.NA, index=index, dtype="string"), pd.Series(pd.NA, index=index, dtype="string"))


def _mark(found: _Found, mask: pd.Series, problem: pd.Series | str, kind: str) -> None:
    mask = mask & found.problem.isna()
    if not mask.any():
        return
    found.problem[mask] = problem[mask] if isinstance(problem, pd.Series) else problem
    found.kind[mask] = kind


def _parse(raw: pd.Series, col: Column, fmt: Format, where: str) -> tuple[pd.Series, _Found, dict[str, str]]:
    """Coerce one column to its kind in the file's format: the values, the problems, what was detected."""
    found, detected = _empty_found(raw.index), {}
    if col.kind == "date":
        values, problem = parse_dates(raw, fmt.date_format)
        empty = values.isna() & problem.isna()
        _mark(found, problem.str.contains("is outside", regex=False).fillna(False).astype(bool), problem,
              "date out of range")
        _mark(found, problem.notna(), problem, "unparseable date")
    elif col.kind == "bool" and pd.api.types.is_bool_dtype(raw):
        values = raw.astype(pd.BooleanDtype())
        empty = values.isna()
    elif col.kind in ("money", "number") and pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = raw.astype("float64")
        empty = values.isna()
    elif col.kind in ("money", "number"):
        cells = raw.astype(object)
        native = native_numbers(raw)
        text = cells_as_text(cells.where(~native, None) if native.any() else raw)
        empty = text.isna() & ~native
        try:
            decimal, thousands = decide_decimal(text, fmt)
        except FormatError as e:
            raise ContractError([f"{where}: {p}" for p in e.problems]) from e
        if fmt.decimal is None and text.notna().any() and (
                decimal == "," or (thousands and text.str.contains(thousands, regex=False).any())):
            detected = {"decimal": decimal, **({"thousands": thousands} if thousands else {})}
        values, problem = parse_numbers(text, decimal, thousands)
        values[native] = cells[native].astype("float64")
        _mark(found, problem.notna(), problem, "not a number")
    else:
        text = cells_as_text(raw)
        empty = text.isna()
        if col.kind == "bool":
            low = text.str.lower()
            values = pd.Series(pd.NA, index=raw.index, dtype=pd.BooleanDtype())
            values[low.isin(_TRUE).fillna(False).astype(bool)] = True
            values[low.isin(_FALSE).fillna(False).astype(bool)] = False
            bad = ~empty & values.isna()
            _mark(found, bad, "not true/false: '" + text + "'", "not true/false")
        elif col.kind == "category":
            values = text.str.lower()
        else:
            values = text
    if not col.nullable:
        _mark(found, empty, "missing value", "missing value")
    return values, found, detected


def _each(work: Callable[[T], R], items: Iterable[T]) -> list[tuple[R | None, Exception | None]]:
    """``work`` of each item, on a thread a core (``features.parallel.count``), in the items' order: its result
    and None, or None and what it raised. Validation's files and a table's columns are read and parsed
    independently, and Arrow's reader and string kernels (the shapes of numbers and dates) run outside the GIL; at
    985,325 invoices a folder took 20.2-20.9 s to validate against 23.2-23.3 s one at a time (in process,
    alternated, this host)."""

    def attempt(item: T) -> tuple[R | None, Exception | None]:
        try:
            return work(item), None
        except Exception as e:  # noqa: BLE001 - handed back, in order, to the caller that decides
            return None, e

    items = list(items)
    workers = min(len(items), parallel.count())
    if workers <= 1:
        return [attempt(item) for item in items]
    with ThreadPoolExecutor(workers, thread_name_prefix="likvid-validate") as pool:
        return list(pool.map(attempt, items))


def _parsed(raw: pd.DataFrame, cols: list[Column], fmt: Format, table: str) -> dict[str, tuple]:
    """``_parse`` of each of ``cols`` (``_each``); the first column in ``cols``' order whose format is wrong raises
    its error, as one column after the other would."""
    out = {}
    for col, (parsed, error) in zip(cols, _each(lambda c: _parse(raw[c.name], c, fmt, f"{table}.{c.name}"), cols)):
        if error is not None:
            raise error
        out[col.name] = parsed
    return out


def _long(table: str, column: str, problem: pd.Series, kind: pd.Series | str | None = None,
          value: pd.Series | None = None) -> pd.DataFrame:
    """Reject rows (REJECT_COLUMNS plus the problem's kind and the value shown in the diagnosis)."""
    problem = problem.dropna()
    if kind is None:
        kind = problem
    kinds = kind.reindex(problem.index) if isinstance(kind, pd.Series) else pd.Series(kind, index=problem.index)
    values = value.reindex(problem.index) if value is not None else pd.Series(pd.NA, index=problem.index)
    return pd.DataFrame({"table": table, "row": problem.index.astype("int64"),
                         "column": column, "problem": problem.astype(str).to_numpy(),
                         "kind": kinds.astype(str).to_numpy(), "value": values.astype(object).to_numpy()})


def _schema_problems(frame: pd.DataFrame, table: Table) -> list[pd.DataFrame]:
    import pandera.pandas as pa  # only when a folder is validated: a cached validation needs none

    try:
        schema(table).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as e:
        cases = e.failure_cases.dropna(subset=["index"])
        return [pd.DataFrame({
            "table": table.name,
            "row": cases["index"].astype("int64").to_numpy(),
            "column": cases["column"].astype(str).to_numpy(),
            "problem": (cases["check"].astype(str) + " (got " + cases["failure_case"].astype(str) + ")").to_numpy(),
            "kind": cases["check"].astype(str).to_numpy(),
            "value": cases["failure_case"].astype(str).to_numpy(),
        })]
    return []


def _rule_problems(frame: pd.DataFrame, table: Table) -> list[pd.DataFrame]:
    out = []
    for rule in table.rules:
        present = frame[list(rule.columns)].notna().all(axis=1)
        broken = present & ~rule.ok(frame).fillna(True).astype(bool)
        # Only the broken rows' values are shown (dates are whole days, so each formats as it would in the column).
        shown = frame.loc[broken, rule.column].astype(str) if rule.column in frame else None
        out.append(_long(table.name, rule.column, pd.Series(rule.problem, index=frame.index[broken], dtype="string"),
                         rule.problem, shown))
    return out


def _future_problems(frame: pd.DataFrame, table: Table, today: pd.Timestamp) -> list[pd.DataFrame]:
    """Facts learned later (payments, disputes, deliveries) cannot be dated after today."""
    out = []
    for name in table.learned:
        late = frame[name] > today
        shown = frame.loc[late, name].dt.strftime("%Y-%m-%d")
        text = name + " " + shown + f" is after today ({today:%Y-%m-%d})"
        out.append(_long(table.name, name, text.astype("string"), "is after today", shown))
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
    return _long(table.name, table.key[0], text.astype("string"), f"duplicated {label}", values)


def _padding_hint(unknown: pd.Series, known: pd.Index) -> str:
    """When unknown ids match known ones once leading zeros are restored (or dropped), say so."""
    ids = pd.Series(unknown.dropna().unique()).astype(str)
    digits = ids[ids.str.fullmatch(r"\d+")]
    if digits.empty:
        return ""
    bare = pd.Series(known.astype(str), index=known.astype(str))
    bare = pd.Series(bare.index, index=bare.str.lstrip("0"))
    bare = bare[~bare.index.duplicated()]
    matched = digits[digits.str.lstrip("0").isin(bare.index)]
    if len(matched) < max(1, len(digits) // 2):
        return ""
    v = matched.iloc[0]
    return (f"{len(matched):,} of {len(digits):,} such ids match once zero-padded (e.g. '{v}' is "
            f"'{bare[v.lstrip('0')]}'): the export dropped leading zeros; save the ids as text")


def _link_problems(frame: pd.DataFrame, table: Table, used: dict[str, pd.DataFrame],
                   rejected_keys: dict[str, pd.Series], hints: dict) -> list[pd.DataFrame]:
    out = []
    for link in table.links:
        if link.table not in used:  # the linked table is absent: nothing to check against
            continue
        target = used[link.table]
        keys = target[link.to]
        values = frame[link.column]
        present = values.notna()
        known = is_in(values, keys)  # one Arrow hash lookup, not isin's Python loop over a million keys
        missing = present & ~known
        refused = rejected_keys.get(link.table)
        rejected = missing & (is_in(values, refused) if refused is not None else False)
        text = pd.Series(pd.NA, index=frame.index, dtype="string")
        text[missing & ~rejected] = ("unknown " + link.column + " '" + values[missing & ~rejected]
                                     + f"' (not in {link.table})")
        kind = pd.Series(f"unknown {link.column} (not in {link.table})", index=frame.index, dtype="string")
        text[rejected] = (link.column + " '" + values[rejected]
                          + f"' {_KNOCK_ON} of {link.table}")
        kind[rejected] = f"{link.column} {_KNOCK_ON} of {link.table}"
        out.append(_long(table.name, link.column, text, kind, values))
        unknown = values[missing & ~rejected]
        hint = _padding_hint(unknown, pd.Index(keys)) if len(unknown) else ""
        if hint:
            hints[(table.name, link.column, f"unknown {link.column} (not in {link.table})")] = hint
        for ours, theirs in link.same:
            linked = target[theirs].to_numpy()[positions(keys, values[present & known])]
            unequal = frame.loc[present & known, ours].to_numpy() != linked
            differs = pd.Series(False, index=frame.index)
            differs[present & known] = unequal
            shown = pd.Series(linked[unequal.astype(bool)]).astype(str).to_numpy()
            text = (ours + " '" + frame.loc[differs, ours] + "' differs from " + link.table + " "
                    + values[differs] + "'s " + theirs + " '" + shown + "'")
            out.append(_long(table.name, ours, text.astype("string"), f"{ours} differs from {link.table}'s {theirs}",
                             frame[ours]))
    return out


def _defaults(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    """Apply the contract's defaults to absent values."""
    if table.name == Inv.TABLE:
        paid = frame[Inv.PAID].notna() & frame[Inv.PAID_AMOUNT].isna()
        frame.loc[paid, Inv.PAID_AMOUNT] = frame.loc[paid, Inv.AMOUNT]
    if table.name == Ord.TABLE:
        frame[Ord.CANCELLED] = frame[Ord.CANCELLED].fillna(False)
    return frame[table.names]


def _number_hint(values: pd.Series) -> str:
    """The decimal/thousands setting that reads every one of these values, when there is one."""
    sample = values.dropna().astype(str).drop_duplicates().head(200)
    if sample.empty:
        return ""
    for decimal, thousands in ((",", "."), (",", " "), (",", ""), (".", ","), (".", " "), (".", "'")):
        nums, problem = parse_numbers(pd.Series(sample.to_numpy(), dtype="string"), decimal, thousands)
        if problem.isna().all():
            shown = f'{{decimal: "{decimal}"' + (f', thousands: "{thousands}"' if thousands else "") + "}"
            return f"these read as numbers with format: {shown}"
    return ""


def _knock_on_rows(rejects: pd.DataFrame) -> pd.Series:
    """Per reject line, whether its row was rejected only because a row it refers to was."""
    is_knock = rejects["kind"].str.contains(_KNOCK_ON, regex=False)
    only = is_knock.groupby([rejects["table"], rejects["row"]]).transform("all")
    return only.astype(bool)


def _diagnose(rejects: pd.DataFrame, hints: dict) -> pd.DataFrame:
    """Rejects counted by table, column and kind of problem, with examples and a hint where one is known."""
    if rejects.empty:
        return pd.DataFrame(columns=DIAGNOSIS_COLUMNS)
    rejects = rejects.assign(knock_on=_knock_on_rows(rejects))
    # A row with a problem of its own is counted under that problem, not as a knock-on too.
    own_problem = ~rejects["knock_on"] & rejects["kind"].str.contains(_KNOCK_ON, regex=False)
    rows = []
    for (table, column, kind), group in rejects[~own_problem].groupby(["table", "column", "kind"], sort=False):
        shown = group["value"].dropna().astype(str).drop_duplicates()
        hint = hints.get((table, column, kind), "")
        if not hint and kind == "unparseable date":
            hint = date_hint(shown)
        if not hint and kind == "not a number":
            hint = _number_hint(shown)
        if not hint and kind == "date out of range":
            hint = "leave the date empty when there is none"
        rows.append({"table": table, "column": column, "problem": kind, "rows": group["row"].nunique(),
                     "examples": ", ".join(f"'{v}'" for v in shown.head(_EXAMPLES)), "hint": hint,
                     "knock_on": bool(group["knock_on"].all())})
    out = pd.DataFrame(rows, columns=DIAGNOSIS_COLUMNS)
    return out.sort_values(["knock_on", "rows"], ascending=[True, False], kind="stable").reset_index(drop=True)


def describe(diagnosis: pd.DataFrame, table: str, top: int = 3) -> list[str]:
    """The main reasons a table's rows were rejected, one readable line each (for error messages)."""
    lines = []
    for r in diagnosis[diagnosis["table"] == table].head(top).itertuples(index=False):
        line = f"  {r.rows:,} × {r.column}: {r.problem}" + (f", e.g. {r.examples}" if r.examples else "")
        lines.append(line + (f" — {r.hint}" if r.hint else ""))
    return lines


def _read(name: str, path: Path, mapping: Mapping) -> tuple[pd.DataFrame, dict[str, str]]:
    try:
        frame, detected = read_table(path, mapping.format(name))
    except FormatError as e:
        raise ContractError(e.problems) from e
    declared = {k: v for k, v in detected.items() if getattr(mapping.format(name), k, None) is None}
    return _rename(frame, TABLES[name], mapping.get(name, {}) or {}, path, declared), detected


def validate(folder: str | Path, mapping: str | Path | dict | Mapping | None = None,
             today: pd.Timestamp | str | None = None, policy: Policy | None = None,
             cache: bool = True) -> Validation:
    """Load and validate a data folder; raise ``ContractError`` on errors, set bad rows aside.

    ``mapping`` is a mapping file, a dict shaped like one, or None: then the folder's own
    ``mapping.yaml`` when there is one. ``policy`` (``--config``) gives the base currency; None: the
    folder's own ``likvid.yaml``. With ``cache``, an unchanged folder is read back from the Parquet copy
    of its last validation (``features.cache``: the same tables, rejects and diagnosis) instead of validated again.
    """
    folder = Path(folder)
    today = pd.Timestamp(today if today is not None else pd.Timestamp.today()).normalize()
    maps = _resolve_mapping(folder, mapping)
    files = find_files(folder)
    if not cache:
        return _validate(folder, maps, files, today, policy)
    # Keyed by the base currency validation will use, however it was asked for (a command's policy read from the
    # folder's likvid.yaml, or no policy: that file again), so that both find the same entry.
    entry = validation_cache.key(files, maps, asked_base(folder, policy), folder / POLICY_FILE)
    hit = validation_cache.read(folder, entry, today)
    if hit is not None:
        return Validation(**hit)
    result = _validate(folder, maps, files, today, policy)
    result.company.cache = validation_cache.write(folder, entry, today, result.company, result.rejects,
                                                  result.summary, result.diagnosis, result.ignored, result.detected,
                                                  result.mapping)
    return result


def _validate(folder: Path, maps: Mapping, files: dict[str, Path], today: pd.Timestamp,
              policy: Policy | None) -> Validation:
    frames, raw_counts, supplied, ignored, detected, problems = {}, {}, {}, {}, {}, []
    for (name, path), (read, error) in zip(files.items(), _each(lambda item: _read(*item, maps), files.items())):
        table = TABLES[name]
        if error is not None:
            if not isinstance(error, ContractError):
                raise error
            problems += error.problems
            continue
        frame, detected[name] = read
        missing = [c for c in table.required_columns if c not in frame.columns]
        if missing:
            hint = ""
            if len(frame.columns) == 1:
                used_sep = maps.format(name).delimiter or detected[name].get("delimiter", ",")
                hint = delimiter_hint(str(frame.columns[0]), used_sep)
                hint = f" (the header was read as one column '{frame.columns[0][:60]}'{hint})" if hint else hint
            problems.append(f"{name}: required column{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(missing)} missing from {path.name}{hint}")
            continue
        ignored[name] = [c for c in frame.columns if c not in table.names]
        supplied[name] = frozenset(c for c in frame.columns if c in table.names)
        frames[name], raw_counts[name] = frame, len(frame)
    if problems:
        raise ContractError(problems)

    used, rejects, rejected_keys, hints = {}, [], {}, {}
    for name in [n for n in _ORDER if n in frames]:
        table, raw, fmt = TABLES[name], frames[name], maps.format(name)
        typed = pd.DataFrame(index=raw.index)
        found = []
        parsed = _parsed(raw, [col for col in table.columns if col.name in raw.columns], fmt, name)
        for col in table.columns:
            if col.name in raw.columns:
                typed[col.name], col_found, col_detected = parsed[col.name]
                shown = cells_as_text(raw[col.name]) if col_found.problem.notna().any() else None
                found.append(_long(name, col.name, col_found.problem, col_found.kind, shown))
                for setting, value in col_detected.items():
                    seen = detected[name].get(setting)
                    detected[name][setting if seen in (None, value) else f"{setting} ({col.name})"] = value
            else:
                typed[col.name] = pd.Series(None, index=raw.index, dtype=object).astype(dtype_of(col))
        found += _schema_problems(typed, table)
        found += _rule_problems(typed, table)
        found += _future_problems(typed, table, today)
        found += _link_problems(typed, table, used, rejected_keys, hints)
        found = pd.concat(found, ignore_index=True)
        clean = ~typed.index.isin(found["row"])
        found = pd.concat([found, _duplicate_problems(typed, table, pd.Series(clean, index=typed.index))],
                          ignore_index=True)
        bad = typed.index.isin(found["row"])
        if table.key and len(table.key) == 1:  # keys only rejected rows have: a reference to them is a knock-on
            key = typed[table.key[0]]
            rejected_key = key[bad].dropna()
            rejected_keys[name] = rejected_key[~is_in(rejected_key, key[~bad])].drop_duplicates()
        used[name] = _defaults(typed.loc[~bad].copy(), table)
        rejects.append(found)


    used, rejects, base = reconcile(used, rejects, today, folder, policy)  # paid dates from payments; fx rates
    reject_frame = (pd.concat(rejects, ignore_index=True) if rejects
                    else pd.DataFrame(columns=[*REJECT_COLUMNS, "kind", "value"]))
    if "kind" not in reject_frame:
        reject_frame["kind"] = pd.NA
    reject_frame["kind"] = reject_frame["kind"].fillna(reject_frame["problem"]).astype(str)
    if "value" not in reject_frame:
        reject_frame["value"] = pd.NA
    reject_frame = (reject_frame.drop_duplicates(subset=REJECT_COLUMNS)
                    .sort_values(["table", "row", "column"], kind="stable").reset_index(drop=True))
    diagnosis = _diagnose(reject_frame, hints)
    knock_on = (reject_frame.assign(k=_knock_on_rows(reject_frame)).groupby(["table", "row"])["k"].all()
                .groupby(level="table").sum() if len(reject_frame) else pd.Series(dtype="int64"))
    summary = pd.DataFrame([
        {"table": n, "file": files[n].name, "rows_read": raw_counts[n], "rows_used": len(used[n]),
         "rows_rejected": raw_counts[n] - len(used[n]), "rows_knock_on": int(knock_on.get(n, 0))}
        for n in _ORDER if n in used
    ], columns=SUMMARY_COLUMNS)
    empty = []
    for n in (n for n in _ORDER if n in used and TABLES[n].required and used[n].empty):
        reason = f"all {raw_counts[n]:,} rows rejected; the main reasons:" if raw_counts[n] else "the file has no rows"
        empty += [f"{n}: no usable row in {files[n].name} ({reason})", *describe(diagnosis, n)]
    if empty:
        raise ContractError(empty)
    return Validation(Company(used, supplied, base), reject_frame[REJECT_COLUMNS], summary, ignored,
                      {n: d for n, d in detected.items() if d}, diagnosis, maps.source)


def load(folder: str | Path, mapping: str | Path | dict | Mapping | None = None) -> Company:
    """The usable company in a folder (rejected rows left out; see ``validate`` for the report)."""
    return validate(folder, mapping).company


__all__ = ["Company", "ContractError", "Mapping", "Validation", "describe", "find_files", "load", "read_mapping",
           "validate"]
