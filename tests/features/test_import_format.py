"""The import format (mapping ``format:``), what is detected, ambiguity, dates out of range, and the diagnosis."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.load import ContractError, read_mapping, validate
from tests.conftest import TODAY, tiny_customers, tiny_invoices, write_tables

SEMICOLON_CUSTOMERS = "Kundnr;Namn\n007;Åkesson AB\n008;Björk\n"
SEMICOLON_INVOICES = ("Nr;Kund;Datum;Förfaller;Belopp;Betald\n"
                      "I1;007;01.01.2025;31.01.2025;1.313,50;05.02.2025\n"
                      "I2;008;03.01.2025;02.02.2025;50,5;\n")
SWEDISH = """
format:
  delimiter: ";"
  decimal: ","
  thousands: "."
  date_format: "%d.%m.%Y"
  encoding: cp1252
customers: {customer_id: Kundnr, name: Namn}
invoices: {invoice_id: Nr, customer_id: Kund, issue_date: Datum, due_date: Förfaller, amount: Belopp,
           paid_date: Betald}
"""


def _folder(tmp_path: Path, files: dict[str, str | bytes], mapping: str | None = None) -> Path:
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    if mapping is not None:
        (folder / "mapping.yaml").write_text(mapping, encoding="utf-8")
    return folder


def _invoices_csv(amounts: list[str], sep: str = ",", dates: tuple[str, str] = ("2025-01-01", "2025-01-31")) -> str:
    head = sep.join(["invoice_id", "customer_id", "issue_date", "due_date", "amount"])
    rows = [sep.join([f"I{i}", "007", *dates, f'"{a}"' if sep in a else a]) for i, a in enumerate(amounts)]
    return "\n".join([head, *rows]) + "\n"


CUSTOMERS = "customer_id,name\n007,Acme\n008,Beta\n"


def test_declared_format_is_applied_exactly(tmp_path):
    folder = _folder(tmp_path, {"customers.csv": SEMICOLON_CUSTOMERS.encode("cp1252"),
                                "invoices.csv": SEMICOLON_INVOICES.encode("cp1252")}, SWEDISH)
    result = validate(folder, today=TODAY)  # no mapping given: the folder's mapping.yaml is used
    assert result.mapping == str(folder / "mapping.yaml")
    invoices = result.company["invoices"]
    assert invoices["amount"].tolist() == [1313.5, 50.5]
    assert invoices["issue_date"].tolist() == [pd.Timestamp("2025-01-01"), pd.Timestamp("2025-01-03")]
    assert result.company["customers"]["name"].tolist() == ["Åkesson AB", "Björk"]
    assert result.rejects.empty and result.detected == {}


def test_declared_format_rejects_values_in_another_format(tmp_path):
    bad = SEMICOLON_INVOICES.replace("1.313,50", "1313.50").replace("05.02.2025", "2025-02-05")
    folder = _folder(tmp_path, {"customers.csv": SEMICOLON_CUSTOMERS.encode("cp1252"),
                                "invoices.csv": bad.encode("cp1252")}, SWEDISH)
    rejects = validate(folder, today=TODAY).rejects.set_index("column")["problem"]
    assert "not a number: '1313.50'" in rejects["amount"]
    assert "unparseable date '2025-02-05' (expected %d.%m.%Y)" in rejects["paid_date"]


def test_an_explicit_mapping_wins_over_the_folders(tmp_path):
    folder = _folder(tmp_path, {"customers.csv": CUSTOMERS, "invoices.csv": _invoices_csv(["10"])},
                     "invoices: {invoice_id: Nope}\n")
    with pytest.raises(ContractError, match="'Nope' for invoice_id"):
        validate(folder, today=TODAY)
    other = tmp_path / "other.yaml"
    other.write_text("customers: {name: name}\n")
    assert len(validate(folder, other, today=TODAY).company["invoices"]) == 1


def test_per_table_format_overrides_the_shared_one(tmp_path):
    invoices = _invoices_csv(["10"], dates=("01/02/2025", "03/02/2025"))
    folder = _folder(tmp_path, {"customers.csv": CUSTOMERS, "invoices.csv": invoices},
                     'format: {date_format: "%d.%m.%Y", invoices: {date_format: "%m/%d/%Y"}}\n')
    loaded = validate(folder, today=TODAY).company["invoices"]
    assert loaded["issue_date"].iloc[0] == pd.Timestamp("2025-01-02")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("format: {decimal: x}\n", "decimal must be '.' or ','"),
        ("format: {colour: red}\n", "unknown setting 'colour'"),
        ("format: {encoding: klingon}\n", "unknown encoding 'klingon'"),
        ("format: {delimiter: ';;'}\n", "delimiter must be one character"),
        ('format: {decimal: ",", thousands: ","}\n', "cannot both be ','"),
        ("format: {invoices: {sheet: 3}}\n", "sheet must be text"),
        ("format: {date_format: dd.mm.yyyy}\n", "strftime pattern"),
    ],
)
def test_bad_format_settings_are_errors(tmp_path, text, message):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ContractError, match=message):
        read_mapping(path)


def test_mapping_as_dict_is_checked_like_a_file(tmp_path):
    folder = write_tables(tmp_path / "d", customers=tiny_customers(), invoices=tiny_invoices())
    with pytest.raises(ContractError, match="unknown table 'nonsense'"):
        validate(folder, {"nonsense": {}}, today=TODAY)
    assert validate(folder, {"format": {"decimal": "."}}, today=TODAY).rejects.empty


# --- detected without being declared ---------------------------------------------------------------------------


def test_undeclared_delimiter_encoding_and_bom_are_detected_and_reported(tmp_path):
    folder = _folder(tmp_path, {
        "customers.csv": b"\xef\xbb\xbf" + CUSTOMERS.encode(),
        "invoices.csv": _invoices_csv(["10,5", "1.313,50"], sep=";").replace("007", "Sjöberg").encode("cp1252"),
    })
    (folder / "customers.csv").write_bytes(b"\xef\xbb\xbf" + (CUSTOMERS + "Sjöberg,x\n").encode())
    result = validate(folder, today=TODAY)
    assert result.detected["customers"] == {"encoding": "utf-8 with BOM"}
    assert result.detected["invoices"] == {"encoding": "cp1252", "delimiter": ";", "decimal": ",", "thousands": "."}
    assert result.company["invoices"]["amount"].tolist() == [10.5, 1313.5]
    assert result.company["invoices"]["customer_id"].tolist() == ["Sjöberg", "Sjöberg"]


def test_a_declared_encoding_that_does_not_fit_is_an_error_with_the_right_one(tmp_path):
    folder = _folder(tmp_path, {"customers.csv": "customer_id,name\n007,Åkesson Ångström Öberg AB\n".encode("cp1252"),
                                "invoices.csv": _invoices_csv(["10"])}, "format: {encoding: utf-8}\n")
    with pytest.raises(ContractError, match=r"customers.csv is not utf-8 as declared .*set encoding: cp1252"):
        validate(folder, today=TODAY)


def test_a_utf8_file_declared_cp1252_is_an_error_not_mojibake(tmp_path):
    folder = _folder(tmp_path, {"customers.csv": "customer_id,name\n007,Köping AB\n",
                                "invoices.csv": _invoices_csv(["10"])}, "format: {encoding: cp1252}\n")
    with pytest.raises(ContractError, match=r"customers.csv is declared cp1252 but is UTF-8: .*'Köping' would "
                                            r"become 'KÃ¶ping'; set format: encoding: utf-8"):
        validate(folder, today=TODAY)


def test_a_semicolon_file_read_with_commas_names_the_delimiter(tmp_path):
    folder = _folder(tmp_path, {"customers.csv": "customer_id;name\n007;Acme\n",
                                "invoices.csv": _invoices_csv(["10"])}, 'format: {delimiter: ","}\n')
    with pytest.raises(ContractError, match=r"read as one column .*delimiter: \";\""):
        validate(folder, today=TODAY)
    folder = _folder(tmp_path, {"customers.csv": "customer_id;name\n007;Acme, Inc\n"})
    with pytest.raises(ContractError, match=r"delimiter ','.*delimiter: \";\""):
        validate(folder, today=TODAY)


# --- numbers: ambiguity is an error --------------------------------------------------------------------------------


@pytest.mark.parametrize("amounts", [["1.313", "952", "12.450"], ["1,313", "2,000"]])
def test_amounts_that_read_both_ways_are_an_error_naming_the_column(tmp_path, amounts):
    folder = _folder(tmp_path, {"customers.csv": CUSTOMERS, "invoices.csv": _invoices_csv(amounts)})
    with pytest.raises(ContractError, match=r"invoices.amount: values such as '1[.,]313'") as e:
        validate(folder, today=TODAY)
    assert "declare" in str(e.value)


@pytest.mark.parametrize(
    ("amounts", "expected"),
    [
        (["1.313", "5.5"], [1.313, 5.5]),  # one value with 1 decimal decides '.'
        (["1.313", "2.000.000"], [1313.0, 2000000.0]),  # repeated dot: thousands
        (["1.313", "7,25"], [1313.0, 7.25]),  # a decimal comma elsewhere in the column
        (["1.313", "0.313"], [1.313, 0.313]),  # a group never starts a number with 0
        (["1313", "12"], [1313.0, 12.0]),  # no separator at all: nothing to decide
    ],
)
def test_other_values_in_the_column_decide(tmp_path, amounts, expected):
    folder = _folder(tmp_path, {"customers.csv": CUSTOMERS, "invoices.csv": _invoices_csv(amounts)})
    assert validate(folder, today=TODAY).company["invoices"]["amount"].tolist() == expected


def test_declared_decimal_settles_what_would_be_ambiguous(tmp_path):
    folder = _folder(tmp_path, {"customers.csv": CUSTOMERS, "invoices.csv": _invoices_csv(["1.313", "952"])},
                     'format: {decimal: ",", thousands: "."}\n')
    assert validate(folder, today=TODAY).company["invoices"]["amount"].tolist() == [1313.0, 952.0]


def test_a_minority_in_the_other_format_is_rejected_with_a_hint(tmp_path):
    folder = _folder(tmp_path, {"customers.csv": CUSTOMERS,
                                "invoices.csv": _invoices_csv(["10.5", "11.25", "3.75", "1,5"])})
    result = validate(folder, today=TODAY)
    assert result.rejects["row"].tolist() == [4]
    assert result.diagnosis.iloc[0]["problem"] == "not a number"
    assert 'decimal: ","' in result.diagnosis.iloc[0]["hint"]


# --- dates ---------------------------------------------------------------------------------------------------------


def test_excel_midnight_timestamps_are_dates_and_other_times_are_not(tmp_path):
    invoices = _invoices_csv(["10", "11"], dates=("2025-03-01 00:00:00", "2025-03-31"))
    invoices = invoices.replace("I1,007,2025-03-01 00:00:00", "I1,007,2025-03-01 13:45:00")
    folder = _folder(tmp_path, {"customers.csv": CUSTOMERS, "invoices.csv": invoices})
    result = validate(folder, today=TODAY)
    assert result.company["invoices"]["issue_date"].tolist() == [pd.Timestamp("2025-03-01")]
    assert "unparseable date '2025-03-01 13:45:00'" in result.rejects["problem"].iloc[0]


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "1850-06-01"])
def test_out_of_range_dates_are_row_rejects_naming_the_value(tmp_path, value):
    invoices = tiny_invoices() + [{**tiny_invoices()[0], "invoice_id": "I9", "paid_date": value}]
    data = write_tables(tmp_path, customers=tiny_customers(), invoices=invoices)
    result = validate(data, today=TODAY)
    assert result.rejects["row"].tolist() == [4]
    assert f"date '{value}' is outside 1900-01-01..2199-12-31" in result.rejects["problem"].iloc[0]
    assert len(result.company["invoices"]) == 3


def test_out_of_range_native_dates_in_parquet_are_row_rejects(tmp_path):
    invoices = pd.DataFrame(tiny_invoices()).drop(columns="paid_date")
    invoices["paid_date"] = pd.Series(["2025-02-05", "9999-12-31", None], dtype="datetime64[us]")
    data = write_tables(tmp_path, fmt="parquet", customers=tiny_customers(), invoices=invoices)
    result = validate(data, today=TODAY)
    assert result.rejects["row"].tolist() == [2]
    assert "9999-12-31" in result.rejects["problem"].iloc[0]


# --- xlsx ------------------------------------------------------------------------------------------------------------


def _xlsx(path: Path, sheets: dict[str, pd.DataFrame]) -> None:
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for sheet, frame in sheets.items():
            frame.to_excel(writer, sheet_name=sheet, index=False)


def test_xlsx_with_native_cells_and_a_declared_sheet(tmp_path):
    folder = write_tables(tmp_path / "x", customers=tiny_customers())
    invoices = pd.DataFrame(tiny_invoices())
    for col in ("issue_date", "paid_date"):
        invoices[col] = pd.to_datetime(invoices[col])  # Excel date cells
    invoices["amount"] = invoices["amount"].astype(float)
    # One typed-in text date among date cells: read with the declared format.
    invoices["due_date"] = [pd.Timestamp("2025-01-31"), "02.02.2025", pd.Timestamp("2025-03-01")]
    _xlsx(folder / "invoices.xlsx", {"Notes": pd.DataFrame({"a": [1]}), "Fakturor": invoices})
    (folder / "mapping.yaml").write_text('format: {date_format: "%d.%m.%Y", invoices: {sheet: Fakturor}}\n')
    result = validate(folder, today=TODAY)
    loaded = result.company["invoices"]
    assert loaded["amount"].tolist() == [100.0, 50.5, 75.0]
    assert loaded["due_date"].tolist() == [pd.Timestamp(d) for d in ("2025-01-31", "2025-02-02", "2025-03-01")]
    assert result.rejects.empty


def test_xlsx_sheet_must_exist_and_undeclared_first_sheet_is_reported(tmp_path):
    folder = write_tables(tmp_path / "x", customers=tiny_customers())
    _xlsx(folder / "invoices.xlsx", {"Fakturor": pd.DataFrame(tiny_invoices()), "Other": pd.DataFrame({"a": [1]})})
    assert validate(folder, today=TODAY).detected["invoices"] == {"sheet": "Fakturor"}
    (folder / "mapping.yaml").write_text("format: {invoices: {sheet: Sheet9}}\n")
    with pytest.raises(ContractError, match="has no sheet 'Sheet9' \\(sheets: Fakturor, Other\\)"):
        validate(folder, today=TODAY)


def test_one_table_in_two_formats_including_xlsx_is_an_error(tmp_path):
    folder = write_tables(tmp_path / "x", customers=tiny_customers(), invoices=tiny_invoices())
    _xlsx(folder / "invoices.xlsx", {"S": pd.DataFrame(tiny_invoices())})
    with pytest.raises(ContractError, match="both invoices.csv and invoices.xlsx"):
        validate(folder, today=TODAY)


# --- errors ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "message"), [("amount,amount ", "'amount' and 'amount '"),
                                                 ("amount,amount", "'amount' appears twice")])
def test_column_names_that_collide_are_an_error_naming_both(tmp_path, header, message):
    invoices = f"invoice_id,customer_id,issue_date,due_date,{header}\nI1,007,2025-01-01,2025-01-31,1,2\n"
    folder = _folder(tmp_path, {"customers.csv": CUSTOMERS, "invoices.csv": invoices})
    with pytest.raises(ContractError, match=message):
        validate(folder, today=TODAY)


def test_a_required_table_with_no_usable_row_is_an_error_with_the_diagnosis(tmp_path):
    folder = _folder(tmp_path, {"customers.csv": CUSTOMERS,
                                "invoices.csv": _invoices_csv(["10", "20"], dates=("01.03.2025", "31.03.2025"))})
    with pytest.raises(ContractError) as e:
        validate(folder, today=TODAY)
    text = str(e.value)
    assert "invoices: no usable row in invoices.csv (all 2 rows rejected" in text
    assert "'01.03.2025'" in text and 'date_format: "%d.%m.%Y"' in text


def test_an_empty_required_table_is_an_error(tmp_path):
    folder = _folder(tmp_path, {"customers.csv": CUSTOMERS, "invoices.csv": _invoices_csv([])})
    with pytest.raises(ContractError, match="invoices: no usable row .*no rows"):
        validate(folder, today=TODAY)


# --- diagnosis -------------------------------------------------------------------------------------------------------


def test_diagnosis_counts_by_cause_with_examples_and_date_hints(tmp_path):
    good = _invoices_csv(["10"] * 3)
    us = "".join(f"U{i},007,{m}/{d}/2025,12/31/2025,5\n" for i, (m, d) in enumerate([(1, 13), (2, 14), (3, 15)]))
    folder = _folder(tmp_path, {"customers.csv": CUSTOMERS, "invoices.csv": good + us})
    result = validate(folder, today=TODAY)
    assert len(result.rejects) == 6  # every reject is kept, row by row (two columns of three rows)
    row = result.diagnosis.set_index("column").loc["issue_date"]
    assert row["rows"] == 3 and row["problem"] == "unparseable date"
    assert row["examples"] == "'1/13/2025', '2/14/2025', '3/15/2025'"
    assert row["hint"] == 'these read as dates with format: date_format: "%m/%d/%Y"'
    two_way = result.diagnosis.set_index("column").loc["due_date"]["hint"]  # 12/31 only fits M/D, but ...
    assert '"%m/%d/%Y"' in two_way


def test_ambiguous_day_month_order_names_both_formats(tmp_path):
    folder = _folder(tmp_path, {"customers.csv": CUSTOMERS, "invoices.csv": _invoices_csv(["10"]) +
                                "U1,007,01/02/2025,2025-03-01,5\n"})
    hint = validate(folder, today=TODAY).diagnosis.iloc[0]["hint"]
    assert '"%d/%m/%Y" or "%m/%d/%Y"' in hint and "no day above 12" in hint


def test_ids_that_match_once_zero_padded_get_a_hint(tmp_path):
    invoices = (_invoices_csv(["10", "11"]).replace(",007,", ",7,") + "I9,404,2025-01-01,2025-01-31,3\n"
                + "G1,007,2025-01-01,2025-01-31,3\n")
    folder = _folder(tmp_path, {"customers.csv": CUSTOMERS, "invoices.csv": invoices})
    diagnosis = validate(folder, today=TODAY).diagnosis.set_index("column")
    assert diagnosis.loc["customer_id", "rows"] == 3
    assert "match once zero-padded (e.g. '7' is '007')" in diagnosis.loc["customer_id", "hint"]
    assert "save the ids as text" in diagnosis.loc["customer_id", "hint"]


def test_no_padding_hint_when_ids_simply_are_unknown(tmp_path):
    invoices = _invoices_csv(["10"]).replace(",007,", ",404,")
    folder = _folder(tmp_path, {"customers.csv": CUSTOMERS + "009,C\n", "invoices.csv": _invoices_csv(["1"]) +
                                invoices.splitlines()[1] + "\n"})
    assert validate(folder, today=TODAY).diagnosis.iloc[0]["hint"] == ""


def test_knock_on_rejects_are_counted_apart_from_their_cause(tmp_path):
    customers = CUSTOMERS + "009,Gamma,-5\n"
    customers = customers.replace("customer_id,name", "customer_id,name,credit_limit").replace("Acme", "Acme,") \
        .replace("Beta", "Beta,")
    invoices = _invoices_csv(["10"]) + "K1,009,2025-01-01,2025-01-31,5\nK2,009,2025-01-01,2025-01-31,-1\n"
    folder = _folder(tmp_path, {"customers.csv": customers, "invoices.csv": invoices})
    result = validate(folder, today=TODAY)
    summary = result.summary.set_index("table")
    assert summary.loc["invoices", "rows_rejected"] == 2 and summary.loc["invoices", "rows_knock_on"] == 1
    d = result.diagnosis.set_index(["table", "problem"])
    knock = d.loc[("invoices", "customer_id refers to a rejected row of customers")]
    assert bool(knock["knock_on"]) and knock["rows"] == 1  # K2 has a problem of its own: counted there
    assert d.loc[("invoices", "must be > 0"), "rows"] == 1
    assert result.diagnosis.iloc[-1]["knock_on"]  # knock-ons come after the causes


def test_cli_validate_exits_2_on_ambiguity_and_prints_the_diagnosis(tmp_path):
    from typer.testing import CliRunner

    from serving.cli import app

    folder = _folder(tmp_path, {"customers.csv": CUSTOMERS, "invoices.csv": _invoices_csv(["1.313", "952"])})
    result = CliRunner().invoke(app, ["validate", str(folder)])
    assert result.exit_code == 2 and "invoices.amount" in result.output and "'1.313'" in result.output
    (folder / "invoices.csv").write_text(_invoices_csv(["10"] * 3) + "U1,007,1/13/2025,2025-03-01,5\n")
    rejects = tmp_path / "rejects.csv"
    result = CliRunner().invoke(app, ["validate", str(folder), "--rejects", str(rejects)])
    assert result.exit_code == 0, result.output
    assert "Rejects by cause" in result.output and "%m/%d/%Y" in result.output
    assert pd.read_csv(rejects).columns.tolist() == ["table", "row", "column", "problem"]


# --- the ERP-style export of a generated company (examples/erp-export) ------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _module(path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.parent.name.replace("-", "_") + "_" + path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_erp_export_validates_with_no_flag_and_keeps_every_total(small_company, tmp_path):
    erp = _module(EXAMPLES / "erp-export" / "export.py")
    out = erp.export(small_company, tmp_path / "erp")
    assert b";" in (out / "invoices.csv").read_bytes().splitlines()[0]
    assert "Förfallodatum".encode("cp1252") in (out / "invoices.csv").read_bytes()
    theirs, ours = erp.totals(out), erp.totals(small_company)
    assert (theirs["read"] == theirs["used"] + theirs["rejected"]).all()
    pd.testing.assert_frame_equal(theirs, ours)
    assert validate(out).company["customers"]["customer_id"].str.startswith("0").all()  # leading zeros kept


def test_the_documented_erp_mapping_reads_like_the_exported_one(small_company, tmp_path):
    erp = _module(EXAMPLES / "erp-export" / "export.py")
    out = erp.export(small_company, tmp_path / "erp")
    documented, written = read_mapping(EXAMPLES / "erp-export" / "mapping.yaml"), read_mapping(out / "mapping.yaml")
    for table in written.columns:
        assert documented.format(table) == written.format(table)
        # The documented file names every contract column; an export names those its tables have.
        assert written[table].items() <= documented[table].items()


def test_shipped_real_data_mappings_read(tmp_path):
    for name in ("ibm-ar", "cassandra-ap"):
        mapping = read_mapping(EXAMPLES / name / "mapping.yaml")
        assert mapping.format("invoices").date_format is not None
