"""Write a generated company the way a Swedish ERP exports it, with the mapping that reads it back.

Run: .venv/bin/python examples/erp-export/export.py SOURCE OUT
(SOURCE: a folder written by ``likvid generate``), then: .venv/bin/likvid validate OUT  (no flag: OUT
holds its own mapping.yaml). The export has semicolons, decimal commas with thousands dots on money,
DD.MM.YYYY dates, Windows-1252 text, Swedish column names and leading-zero customer ids kept as text.
The script ends by validating both folders and printing, per table, rows read/used/rejected and the
money totals of each, which must agree.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from features.contract import TABLES
from features.load import find_files, validate

ENCODING = "cp1252"
DATE_FORMAT = "%d.%m.%Y"
FORMAT = {"delimiter": ";", "decimal": ",", "thousands": ".", "date_format": DATE_FORMAT, "encoding": ENCODING}
# Swedish headers, by our column name; a table's own id columns first.
SWEDISH = {
    "customers": {"customer_id": "Kundnr", "name": "Kundnamn", "onboarded_date": "Kund sedan", "owner": "Kundansvarig"},
    "invoices": {"invoice_id": "Fakturanr", "issue_date": "Fakturadatum", "paid_amount": "Betalt belopp"},
    "orders": {"order_id": "Ordernr", "order_date": "Orderdatum", "promised_date": "Utlovat datum"},
    "bills": {"bill_id": "Leverantörsfakturanr", "issue_date": "Fakturadatum"},
    "purchase_orders": {"po_id": "Inköpsordernr", "order_date": "Beställningsdatum"},
    "payments": {"payment_id": "Betalningsnr", "date": "Betaldatum"},
    "credit_notes": {"credit_note_id": "Kreditnota", "date": "Kreditdatum"},
    "actions": {"action_id": "Åtgärdsnr", "date": "Datum", "kind": "Åtgärd"},
    "fx_rates": {"date": "Kursdatum", "rate": "Kurs"},
}
COMMON = {
    "customer_id": "Kundnr", "supplier_id": "Leverantörsnr", "invoice_id": "Fakturanr", "order_id": "Ordernr",
    "po_id": "Inköpsordernr", "due_date": "Förfallodatum", "amount": "Belopp", "currency": "Valuta",
    "paid_date": "Betaldatum", "dispute_date": "Tvistdatum", "delivery": "Leveranssätt", "country": "Land",
    "industry": "Bransch", "credit_limit": "Kreditgräns", "cancelled": "Makulerad", "discount_pct": "Rabatt %",
    "discount_days": "Rabattdagar", "expected_delivery_date": "Beräknad leverans", "delivered_date": "Levererad",
    "terms_days": "Betalningsvillkor dagar", "date": "Datum", "category": "Kategori", "account_id": "Konto",
    "balance": "Saldo", "sku": "Artikelnr", "quantity": "Antal", "unit_cost": "Styckkostnad",
    "reason": "Orsak", "promised_amount": "Utlovat belopp", "promised_date": "Utlovat datum", "by": "Handläggare",
    "note": "Anteckning",
}


def swedish(table: str, column: str) -> str:
    return SWEDISH.get(table, {}).get(column) or COMMON.get(column) or column


def _money(values: pd.Series) -> pd.Series:
    """1313.5 -> '1.313,50' (a finance user's spreadsheet default); empty stays empty."""
    text = values.map(lambda v: "" if pd.isna(v) else f"{float(v):,.2f}")
    return text.str.replace(",", " ").str.replace(".", ",").str.replace(" ", ".")


def _number(values: pd.Series) -> pd.Series:
    """Plain numbers (quantities, rates, percentages) with a decimal comma and no grouping."""
    return values.map(lambda v: "" if pd.isna(v) else (f"{v:g}" if abs(v) < 1e15 else repr(v)).replace(".", ","))


def mapping_for(tables: list[str]) -> dict:
    """The mapping file that reads this export: the format, and our column names to the Swedish ones."""
    return {"format": FORMAT, **{t: {c.name: swedish(t, c.name) for c in TABLES[t].columns} for t in tables}}


def export(source: Path, out: Path) -> Path:
    """Write every table of ``source`` in the ERP's format, plus the mapping.yaml that reads it.

    The company's own settings (likvid.yaml: base currency, company name) travel with it unchanged.
    """
    out.mkdir(parents=True, exist_ok=True)
    if (source / "likvid.yaml").is_file():
        shutil.copyfile(source / "likvid.yaml", out / "likvid.yaml")
    mapping: dict = {"format": FORMAT}
    for name, path in find_files(source).items():
        table = TABLES[name]
        frame = pd.read_csv(path, dtype=str, keep_default_na=False) if path.suffix == ".csv" \
            else pd.read_parquet(path).astype("string").fillna("")
        for col in table.columns:
            if col.name not in frame:
                continue
            present = frame[col.name].replace("", np.nan)
            if col.kind == "date":
                frame[col.name] = pd.to_datetime(present, format="%Y-%m-%d").dt.strftime(DATE_FORMAT).fillna("")
            elif col.kind == "money":
                frame[col.name] = _money(pd.to_numeric(present))
            elif col.kind == "number":
                frame[col.name] = _number(pd.to_numeric(present))
            elif col.kind == "bool":
                frame[col.name] = present.map({"True": "1", "False": "0", "true": "1", "false": "0"}).fillna("")
        renamed = {c.name: swedish(name, c.name) for c in table.columns if c.name in frame}
        mapping[name] = renamed
        frame.rename(columns=renamed).to_csv(out / f"{name}.csv", sep=";", index=False, encoding=ENCODING)
    (out / "mapping.yaml").write_text(
        "# Written by examples/erp-export/export.py: how this ERP export is read (CONTRACT.md, the import format).\n"
        + yaml.safe_dump(mapping, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out


def totals(folder: Path) -> pd.DataFrame:
    """Rows read, used and rejected per table, and the sum of each money column over the used rows."""
    result = validate(folder)
    rows = []
    for r in result.summary.itertuples(index=False):
        frame = result.company[r.table]
        money = {c.name: round(float(frame[c.name].sum()), 2) for c in TABLES[r.table].columns
                 if c.kind in ("money", "number")}
        rows.append({"table": r.table, "read": r.rows_read, "used": r.rows_used, "rejected": r.rows_rejected,
                     **{f"sum {k}": v for k, v in money.items()}})
    return pd.DataFrame(rows).set_index("table")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    export(src, dst)
    theirs, ours = totals(dst), totals(src)
    pd.set_option("display.width", 200)
    pd.set_option("display.float_format", "{:,.2f}".format)
    print(f"export written to {dst}\n\nexport:\n{theirs.to_string()}\n\nsource:\n{ours.to_string()}")
    same = theirs.fillna(0).round(2).equals(ours.fillna(0).round(2))
    print("\ntotals and row counts equal: " + ("yes" if same else "NO"))
    sys.exit(0 if same else 1)
