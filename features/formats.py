"""How a user's export is written: the mapping file's ``format:`` section, reading files by it, and parsing values.

The mapping file (``--mapping``, or ``mapping.yaml`` in the data folder) renames columns per table and may
say how the files are written, for all tables at once and per table::

    format:                    # for every table
      delimiter: ";"           # csv field separator (undeclared: sniffed, and reported)
      decimal: ","             # "." or ","  (undeclared: decided per column from its values, or an error)
      thousands: "."           # digit-group separator in money and numbers ("", ".", ",", " ", "'")
      date_format: "%d.%m.%Y"  # strftime; undeclared: ISO YYYY-MM-DD (a midnight time is accepted)
      encoding: cp1252         # undeclared: UTF-8 (a BOM is skipped), else detected by charset-normalizer
      invoices:                # a table's own settings override the ones above
        sheet: Fakturor        # the sheet of invoices.xlsx (undeclared: the first)
    invoices:                  # our column name: your column name
      invoice_id: Fakturanr

What is declared is applied exactly; what is found without being declared is returned as ``detected``
so the summary can print it. A money column whose values read differently with ``.`` or ``,`` as the
decimal separator, with nothing in the column to decide, is an error: a guess could be 1000× wrong.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

import charset_normalizer
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import yaml

from features.contract import TABLES
from features.limits import EARLIEST_DATE, LATEST_DATE

EARLIEST, LATEST = pd.Timestamp(EARLIEST_DATE), pd.Timestamp(LATEST_DATE)
EXTENSIONS = ("csv", "parquet", "xlsx")
DECIMALS = (".", ",")
THOUSANDS = ("", ".", ",", " ", "'")
_DELIMITERS = ",;\t|"
_ISO = r"\d{4}-\d{2}-\d{2}"
_MIDNIGHT = r"(?:[ T]00:00(?::00(?:\.0+)?)?)?"
# Formats a date column is tried against when it does not read as declared, to suggest a setting.
_DATE_HINTS = ("%Y-%m-%d", "%d.%m.%Y", "%d.%m.%y", "%d/%m/%Y", "%m/%d/%Y", "%d/%m/%y", "%m/%d/%y", "%d-%m-%Y",
               "%d-%b-%y", "%d-%b-%Y", "%d %b %Y", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d",
               "%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M", "%d-%m-%Y %H:%M")


class FormatError(ValueError):
    """A format setting or a file that cannot be read as declared; ``problems`` says why, one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Format:
    """How one table's file is written; ``None`` means undeclared (detected where it can be)."""

    delimiter: str | None = None
    decimal: str | None = None
    thousands: str | None = None
    date_format: str | None = None
    encoding: str | None = None
    sheet: str | None = None


SETTINGS = tuple(f.name for f in fields(Format))


@dataclass(frozen=True)
class Mapping:
    """A read mapping file: column renames per table and the format of each table's file."""

    columns: dict[str, dict[str, str]]
    default: Format = Format()
    tables: dict[str, Format] | None = None
    source: str | None = None  # the file it was read from

    def __getitem__(self, table: str) -> dict[str, str]:
        return self.columns[table]

    def get(self, table: str, default: dict[str, str] | None = None) -> dict[str, str] | None:
        return self.columns.get(table, default)

    def format(self, table: str) -> Format:
        """The table's format: its own settings over the ones for every table."""
        own = (self.tables or {}).get(table)
        if own is None:
            return self.default
        return replace(self.default, **{k: v for k in SETTINGS if (v := getattr(own, k)) is not None})


def _format(raw: object, where: str, problems: list[str]) -> Format:
    if not isinstance(raw, dict):
        problems.append(f"{where} must be a mapping of settings ({', '.join(SETTINGS)})")
        return Format()
    values = {}
    for key, value in raw.items():
        if key not in SETTINGS:
            problems.append(f"{where}: unknown setting '{key}' (known: {', '.join(SETTINGS)})")
        elif value is None:
            continue
        elif not isinstance(value, str):
            problems.append(f"{where}.{key} must be text in quotes, not {value!r}")
        else:
            values[key] = value
    fmt = Format(**values)
    if fmt.delimiter is not None and len(fmt.delimiter) != 1:
        problems.append(f"{where}.delimiter must be one character, not {fmt.delimiter!r}")
    if fmt.decimal is not None and fmt.decimal not in DECIMALS:
        problems.append(f"{where}.decimal must be '.' or ',', not {fmt.decimal!r}")
    if fmt.thousands is not None and fmt.thousands not in THOUSANDS:
        problems.append(f"{where}.thousands must be one of {', '.join(repr(t) for t in THOUSANDS)}, "
                        f"not {fmt.thousands!r}")
    if fmt.decimal is not None and fmt.decimal == fmt.thousands:
        problems.append(f"{where}: decimal and thousands cannot both be {fmt.decimal!r}")
    if fmt.encoding is not None:
        try:
            codecs.lookup(fmt.encoding)
        except LookupError:
            problems.append(f"{where}.encoding: unknown encoding {fmt.encoding!r} (e.g. utf-8, cp1252, latin-1)")
    if fmt.date_format is not None and "%" not in fmt.date_format:
        problems.append(f"{where}.date_format must be a strftime pattern such as \"%d.%m.%Y\", "
                        f"not {fmt.date_format!r}")
    return fmt


def parse_mapping(raw: object, source: str = "mapping") -> Mapping:
    """Check a mapping (as read from YAML): real tables and columns, known format settings."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise FormatError([f"{source}: expected `table: {{our_name: their_name}}` and an optional `format:`"])
    problems: list[str] = []
    columns: dict[str, dict[str, str]] = {}
    default, per_table = Format(), {}
    for table, cols in raw.items():
        if table == "format":
            if not isinstance(cols, dict):
                problems.append(f"{source}: format must be a mapping of settings ({', '.join(SETTINGS)})")
                continue
            shared = {k: v for k, v in cols.items() if k not in TABLES}
            default = _format(shared, f"{source}: format", problems)
            for name in [k for k in cols if k in TABLES]:
                per_table[name] = _format(cols[name], f"{source}: format.{name}", problems)
            continue
        if table not in TABLES:
            problems.append(f"{source}: unknown table '{table}' (known: {', '.join(TABLES)}, and format)")
            continue
        if not isinstance(cols, dict):
            problems.append(f"{source}: table '{table}' must map our column names to yours")
            continue
        for ours, theirs in cols.items():
            if ours not in TABLES[table].names:
                problems.append(f"{source}: {table} has no column '{ours}' "
                                f"(columns: {', '.join(TABLES[table].names)})")
            elif not isinstance(theirs, (str, int)) or str(theirs).strip() == "":
                problems.append(f"{source}: {table}.{ours} must name one of your columns")
        columns[table] = {str(k): str(v).strip() for k, v in cols.items()}
    if problems:
        raise FormatError(problems)
    return Mapping(columns, default, per_table)


def read_mapping_file(path: str | Path) -> Mapping:
    """Read and check a mapping YAML file."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise FormatError([f"mapping {path}: unreadable ({e})"]) from e
    return replace(parse_mapping(raw, f"mapping {path}"), source=str(path))


# --- reading a file --------------------------------------------------------------------------------------------


# When several encodings read a file equally well, the one a Western export most likely used.
_PREFERRED = ("cp1252", "latin_1", "iso8859_15")


def guess_encoding(data: bytes) -> str | None:
    """The encoding charset-normalizer finds for bytes that are not UTF-8, preferring cp1252 among equals."""
    matches = list(charset_normalizer.from_bytes(data))
    if not matches:
        return None
    least = min(m.chaos for m in matches)
    equals = {e for m in matches if m.chaos <= least + 1e-9 for e in m.could_be_from_charset}
    return next((e for e in _PREFERRED if e in equals), matches[0].encoding)


def _refuse_mojibake(path: Path, declared: str, data: bytes, text: str) -> None:
    """A file declared in a one-byte encoding that is really UTF-8 with letters beyond ASCII would be read as
    mojibake ('KÃ¶ping' for 'Köping'): an error naming the setting, never a silent misread."""
    if codecs.lookup(declared).name == "utf-8" or data.isascii():
        return
    try:
        as_utf8 = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return
    seen = next((w for w in re.split(r"[\s,;|\t\"']+", text) if not w.isascii()), "")
    meant = next((w for w in re.split(r"[\s,;|\t\"']+", as_utf8) if not w.isascii()), "")
    raise FormatError([f"{path.stem}: {path.name} is declared {declared} but is UTF-8: read as {declared}, "
                       f"{meant!r} would become {seen!r}; set format: encoding: utf-8 (or leave it undeclared)"])


def _decode(path: Path, fmt: Format, detected: dict[str, str]) -> str:
    """The file's text: the declared encoding exactly, else UTF-8 (BOM skipped), else what is detected."""
    data = path.read_bytes()
    if fmt.encoding is not None:
        try:
            text = data.decode(fmt.encoding).removeprefix("\ufeff")
        except UnicodeDecodeError as e:
            guess = guess_encoding(data)
            hint = f"; it reads as {guess} (set encoding: {guess})" if guess else ""
            raise FormatError([f"{path.stem}: {path.name} is not {fmt.encoding} as declared "
                               f"(byte 0x{data[e.start]:02x} at position {e.start}){hint}"]) from e
        _refuse_mojibake(path, fmt.encoding, data, text)
        return text
    if data.startswith(codecs.BOM_UTF8):
        detected["encoding"] = "utf-8 with BOM"
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="strict")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        guess = guess_encoding(data)
        if guess is None:
            raise FormatError([f"{path.stem}: {path.name} is not UTF-8 (byte 0x{data[e.start]:02x} at position "
                               f"{e.start}) and its encoding cannot be told; declare it (format: encoding: cp1252)"]
                              ) from e
        detected["encoding"] = guess
        return data.decode(guess)


def _first_lines(text: str, n: int) -> list[str]:
    """``text.splitlines()[:n]`` without splitting the whole file: more than n lines in a prefix are whole."""
    size = 1 << 16
    while True:
        lines = text[:size].splitlines()
        if len(lines) > n or size >= len(text):
            return lines[:n]
        size *= 4


def _sniff(text: str) -> str | None:
    sample = "\n".join(_first_lines(text, 50))
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return None


def delimiter_hint(header: str, used: str) -> str:
    """When a header was read as one column, the delimiter it seems to use, as a setting to declare."""
    counts = {d: header.count(d) for d in _DELIMITERS if d != used}
    best = max(counts, key=counts.get)
    if not counts[best]:
        return ""
    shown = "\\t" if best == "\t" else best
    return f"; the header looks {shown!r}-delimited: set format: delimiter: \"{shown}\""


def _header(row: list, path: Path) -> list[str]:
    """Column names, trimmed; names that collide once trimmed are an error naming both."""
    names = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in row]
    names = [n if n.strip() else f"unnamed_{i + 1}" for i, n in enumerate(names)]
    seen: dict[str, str] = {}
    problems = []
    for name in names:
        key = name.strip()
        if key in seen and seen[key] == name:
            problems.append(f"{path.stem}: column {name!r} appears twice in {path.name}; rename one")
        elif key in seen:
            problems.append(f"{path.stem}: columns {seen[key]!r} and {name!r} in {path.name} are the same "
                            f"name once spaces are trimmed; rename one")
        else:
            seen[key] = name
    if problems:
        raise FormatError(problems)
    return [n.strip() for n in names]


def read_table(path: Path, fmt: Format) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read one table's file as declared: csv (cells as text), parquet or xlsx (native cells kept).

    Returns the frame (index = 1-based data row) and the settings that were detected, not declared.
    """
    detected: dict[str, str] = {}
    try:
        if path.suffix == ".csv":
            text = _decode(path, fmt, detected)
            sep = fmt.delimiter
            if sep is None:
                sep = _sniff(text) or ","
                if sep != ",":
                    detected["delimiter"] = "\\t" if sep == "\t" else sep
            if not text.strip():
                raise FormatError([f"{path.stem}: {path.name} is empty"])
            try:
                frame = _read_plain_csv(text, sep)
                if frame is None:
                    frame = pd.read_csv(io.StringIO(text), sep=sep, header=None, dtype=str, keep_default_na=False,
                                        na_filter=False, skip_blank_lines=True, engine="c")
            except pd.errors.ParserError as e:
                raise FormatError([f"{path.stem}: {path.name} cannot be read with delimiter {sep!r} ({str(e).strip()})"
                                   + delimiter_hint(text.splitlines()[0], sep)]) from e
            header = frame.iloc[0].tolist()
            frame = frame.iloc[1:]
            names = _header(header, path)
        elif path.suffix == ".xlsx":
            frame = _read_xlsx(path, fmt, detected)
            names = _header(frame.iloc[0].tolist(), path) if len(frame) else []
            frame = frame.iloc[1:]
        else:
            frame = pd.read_parquet(path)
            names = _header(list(frame.columns), path)
    except FormatError:
        raise
    except Exception as e:  # noqa: BLE001 - any reader failure means the file is unreadable
        raise FormatError([f"{path.stem}: unreadable file {path.name} ({type(e).__name__}: {e})"]) from e
    frame.columns = names
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    return frame, detected


# A csv file with none of these is read the same by Arrow's reader as by pandas' (cells split at the delimiter,
# lines at \n or \r\n): no quotes, no NUL, no lone \r, no blank line and no line starting with whitespace (which
# pandas' skip_blank_lines treats specially). Anything else, and any file Arrow refuses (a ragged row), goes to pandas.
_NOT_LINE_START = np.frombuffer(b"\n\r \t\x0b\x0c", dtype=np.uint8)


def _is_plain(data: bytes) -> bool:
    if b'"' in data or b"\x00" in data or data.count(b"\r") != data.count(b"\r\n"):
        return False
    chars = np.frombuffer(data, dtype=np.uint8)
    line_starts = np.flatnonzero(chars[:-1] == ord("\n")) + 1  # of every line but the first
    return not (len(chars) and chars[0] in _NOT_LINE_START) and not np.isin(chars[line_starts], _NOT_LINE_START).any()


def _read_plain_csv(text: str, sep: str) -> pd.DataFrame | None:
    """The cells of a plain csv file as text (header row included, as pandas' ``header=None`` gives them) by Arrow's
    reader, 3x less CPU than pandas'; None when the file is not plain or Arrow cannot read it."""
    data = text.encode("utf-8")
    if text[:1].isspace() or not _is_plain(data):
        return None
    width = _first_lines(text, 1)[0].count(sep) + 1
    try:
        table = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=pa_csv.ReadOptions(autogenerate_column_names=True, use_threads=False),
            parse_options=pa_csv.ParseOptions(delimiter=sep, quote_char=False, double_quote=False,
                                              escape_char=False, newlines_in_values=False, ignore_empty_lines=True),
            convert_options=pa_csv.ConvertOptions(column_types={f"f{i}": pa.large_string() for i in range(width)},
                                                  null_values=[], strings_can_be_null=False,
                                                  quoted_strings_can_be_null=False))
    except (pa.ArrowException, ValueError):
        return None
    if table.num_columns != width:
        return None
    as_text = pd.StringDtype("pyarrow", na_value=np.nan)  # what read_csv(dtype=str) gives
    return pd.DataFrame({i: pd.Series(column.to_pandas(types_mapper={pa.large_string(): as_text}.get), dtype=as_text)
                         for i, column in enumerate(table.columns)})


def _read_xlsx(path: Path, fmt: Format, detected: dict[str, str]) -> pd.DataFrame:
    book = pd.ExcelFile(path, engine="openpyxl")
    sheets = [str(s) for s in book.sheet_names]
    if fmt.sheet is not None and fmt.sheet not in sheets:
        raise FormatError([f"{path.stem}: {path.name} has no sheet {fmt.sheet!r} (sheets: {', '.join(sheets)})"])
    sheet = fmt.sheet if fmt.sheet is not None else sheets[0]
    if fmt.sheet is None and len(sheets) > 1:
        detected["sheet"] = sheet
    return pd.read_excel(book, sheet_name=sheet, header=None, dtype=object)


# --- parsing values --------------------------------------------------------------------------------------------


def _is_native_number(value: object) -> bool:
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
            and not pd.isna(value))


def native_numbers(raw: pd.Series) -> pd.Series:
    """Which cells of a mixed (xlsx) column are numbers already, not text to parse."""
    return _native(raw, _is_native_number)


def _native(raw: pd.Series, test) -> pd.Series:
    if raw.dtype != object:  # text columns (csv) hold no native cells
        return pd.Series(False, index=raw.index)
    return raw.map(test).astype(bool)


def cells_as_text(series: pd.Series) -> pd.Series:
    """Cells as stripped strings, empty as NA; integral numbers lose their '.0', midnight times their time."""
    if pd.api.types.is_float_dtype(series):
        whole = series.notna() & (series % 1 == 0)
        text = series.astype(object).where(~whole, series.where(~whole, 0).astype("int64").astype(str))
        series = text.where(series.notna(), None)
    elif series.dtype == object:
        series = series.map(_cell_text)
    out = series.astype("string").str.strip()
    return out.mask(out == "")


def _cell_text(value: object) -> object:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d") if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d")
    return str(value)


def _fits(text: pd.Series, decimal: str, thousands: str) -> pd.Series:
    """Which values have the shape of a number with these separators."""
    d, t = re.escape(decimal), re.escape(thousands)
    whole = rf"[1-9]\d{{0,2}}(?:{t}\d{{3}})+|\d+" if thousands else r"\d+"
    shape = rf"[+-]?(?:(?:{whole})(?:{d}\d*)?|{d}\d+)(?:[eE][+-]?\d+)?"
    return text.str.fullmatch(shape).fillna(False).astype(bool)


def _reading(text: pd.Series, decimal: str, thousands: str) -> tuple[pd.Series, pd.Series]:
    """Values under one reading of the separators: (numbers, fits) where fits says the text has that shape."""
    fits = _fits(text, decimal, thousands)
    plain = text.where(fits)
    if thousands:
        plain = plain.str.replace(thousands, "", regex=False)
    plain = plain.str.replace(decimal, ".", regex=False)
    return _to_float(plain), fits


# Plain decimals of at most 15 digits are read by Arrow: exact in both readers, so the same float as pd.to_numeric
# gives (a fuzz of 4M such strings: no difference), without a Python object per cell. Longer ones, exponents and
# anything else go to pd.to_numeric, whose rounding of 16+ digits differs from Arrow's in the last bit.
_PLAIN = r"^[+-]?(?:\d+\.?\d*|\.\d+)$"
_EXACT_DIGITS = 15


def _to_float(text: pd.Series) -> pd.Series:
    values = np.full(len(text), np.nan)
    cells = pa.array(text.array, from_pandas=True)
    # A plain decimal's characters are its digits, at most one point and at most one sign (no regex to count).
    digits = pc.utf8_length(cells)
    for mark in (pc.match_substring(cells, "."), pc.starts_with(cells, "+"), pc.starts_with(cells, "-")):
        digits = pc.subtract(digits, mark.cast(digits.type))
    plain = pc.and_(pc.match_substring_regex(cells, _PLAIN), pc.less_equal(digits, _EXACT_DIGITS)).fill_null(False)
    fast = np.asarray(plain.to_numpy(zero_copy_only=False), dtype=bool)
    if fast.any():
        values[fast] = pc.cast(pc.filter(cells, plain), pa.float64()).to_numpy(zero_copy_only=False)
    rest = ~fast & text.notna().to_numpy(dtype=bool)
    if rest.any():
        values[rest] = np.asarray(pd.to_numeric(text[rest].astype(object), errors="coerce"), dtype="float64")
    return pd.Series(values, index=text.index)


def decide_decimal(text: pd.Series, fmt: Format) -> tuple[str, str]:
    """The (decimal, thousands) a money column is read with: as declared, else decided by its values.

    Raises ``FormatError`` (the caller names the table and column) when both readings fit every value
    and give different numbers, e.g. only ``1.313``-like values in the column.
    """
    if fmt.decimal is not None:
        return fmt.decimal, fmt.thousands or ""
    if fmt.thousands in DECIMALS:
        return DECIMALS[1 - DECIMALS.index(fmt.thousands)], fmt.thousands
    values = text.dropna()
    values = values[values.str.contains(r"[.,]", regex=True)]
    if values.empty:
        return ".", fmt.thousands or ""
    point_thousands = fmt.thousands if fmt.thousands is not None else ","
    comma_thousands = fmt.thousands if fmt.thousands is not None else "."
    point_fits, comma_fits = _fits(values, ".", point_thousands), _fits(values, ",", comma_thousands)
    n_point, n_comma = int(point_fits.sum()), int(comma_fits.sum())
    if n_point == n_comma:  # only a tie needs the numbers themselves
        point, comma = _reading(values, ".", point_thousands)[0], _reading(values, ",", comma_thousands)[0]
        both = point_fits & comma_fits & (point != comma)
        if both.any():
            examples = ", ".join(repr(v) for v in values[both].drop_duplicates().head(4))
            raise FormatError([f"values such as {examples} read differently with '.' or ',' as the decimal "
                               f"separator and nothing in the column decides (about {int(both.sum()):,} values); "
                               f"declare it, e.g. format: {{decimal: \",\", thousands: \".\"}}"])
        if n_point < len(values):
            examples = ", ".join(repr(v) for v in values.drop_duplicates().head(4))
            raise FormatError([f"values such as {examples} mix '.' and ',' as the decimal separator in equal "
                               f"numbers; declare format: decimal"])
        return ".", ""
    decimal = "." if n_point > n_comma else ","
    return decimal, (fmt.thousands if fmt.thousands is not None else ("," if decimal == "." else "."))


def parse_numbers(text: pd.Series, decimal: str, thousands: str) -> tuple[pd.Series, pd.Series]:
    """Numbers from text in the given format; returns (values, problem text or NA)."""
    problem = pd.Series(pd.NA, index=text.index, dtype="string")
    values, fits = _reading(text, decimal, thousands)
    other = ~fits & text.notna() & ~text.str.contains(r"[.,]", regex=True).fillna(False).astype(bool)
    if other.any():  # "inf", "nan" and the like, read (and rejected as not finite) as before
        values[other] = _to_float(text[other])
    bad = text.notna() & (values.isna() | ~np.isfinite(values.fillna(0)))
    described = f"decimal {decimal!r}" + (f", thousands {thousands!r}" if thousands else "")
    problem[bad] = "not a number: '" + text[bad] + f"' (read with {described})"
    return values, problem


def _strptime(value: str, date_format: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(value, date_format)
    except ValueError:
        return None


def parse_dates(raw: pd.Series, date_format: str | None) -> tuple[pd.Series, pd.Series]:
    """Dates from native cells or text (exactly ``date_format``, or ISO with an optional midnight time).

    Returns (values as datetime64[ns] at midnight, problem text or NA). Dates outside
    EARLIEST..LATEST are problems naming the value, never an overflow.
    """
    problem = pd.Series(pd.NA, index=raw.index, dtype="string")
    text = pd.Series(pd.NA, index=raw.index, dtype="string")
    if pd.api.types.is_datetime64_any_dtype(raw):
        when = (raw.dt.tz_localize(None) if getattr(raw.dt, "tz", None) else raw).astype("datetime64[us]")
    else:
        cells = raw.astype(object)
        native = _native(raw, lambda v: isinstance(v, (dt.date, np.datetime64)) and pd.notna(v))
        text = cells_as_text(cells.where(~native, None) if native.any() else raw)
        if date_format is None:
            shaped = text.str.fullmatch(_ISO + _MIDNIGHT).fillna(False).astype(bool)
            when = pd.to_datetime(text.where(shaped).str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
        else:
            when = pd.to_datetime(text, format=date_format, errors="coerce")
        when = when.astype("datetime64[us]")
        if native.any():
            when[native] = pd.to_datetime(cells[native].tolist()).astype("datetime64[us]")
    when = when.dt.normalize()
    inside = when.between(EARLIEST, LATEST)
    outside = when.notna() & ~inside
    values = when.where(inside).astype("datetime64[ns]")
    if outside.any():
        shown = text[outside].where(text[outside].notna(), when[outside].dt.strftime("%Y-%m-%d").astype("string"))
        problem[outside] = ("date '" + shown
                            + f"' is outside {EARLIEST:%Y-%m-%d}..{LATEST:%Y-%m-%d} (an ERP 'no date'? leave it empty)")
    bad = text.notna() & when.isna()
    if bad.any():
        problem[bad] = "unparseable date '" + text[bad] + f"' (expected {date_format or 'YYYY-MM-DD'})"
    return values, problem


def date_hint(examples: pd.Series) -> str:
    """The date_format setting that would read these values, when one (or two) fit them all."""
    sample = examples.dropna().drop_duplicates().head(200).astype(str)
    if sample.empty:
        return ""
    fitting = [f for f in _DATE_HINTS if sample.map(lambda v, f=f: _strptime(v, f) is not None).all()]
    if not fitting:
        return ""
    if fitting == ["%Y-%m-%d"]:
        return ""
    if len(fitting) == 1:
        return f"these read as dates with format: date_format: \"{fitting[0]}\""
    return ("these read as dates with date_format " + " or ".join(f'"{f}"' for f in fitting[:2])
            + " (no day above 12 tells which)")


__all__ = ["EARLIEST", "EXTENSIONS", "LATEST", "Format", "FormatError", "Mapping", "cells_as_text",
           "date_hint", "decide_decimal", "delimiter_hint", "parse_dates", "parse_mapping", "parse_numbers",
           "read_mapping_file", "read_table"]
