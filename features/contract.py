"""The input data contract (CONTRACT.md section 1), expressed once.

Every table name, column name, dtype and rule lives here. Other modules import the
column-name namespaces (``Inv.DUE``, ``Cust.ID`` ...) instead of typing string literals,
and validation derives its pandera schemas and link checks from ``TABLES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

Kind = Literal["id", "date", "money", "number", "text", "bool", "category"]


class Cust:
    TABLE = "customers"
    ID = "customer_id"
    NAME = "name"
    COUNTRY = "country"
    INDUSTRY = "industry"
    CREDIT_LIMIT = "credit_limit"
    ONBOARDED = "onboarded_date"
    # Who is responsible for the account. Not in the contract's customers table: read as an optional column
    # (mapped like any other) so that the worklist and the collections report can be split by owner.
    OWNER = "owner"


class Inv:
    TABLE = "invoices"
    ID = "invoice_id"
    CUSTOMER = "customer_id"
    ISSUE = "issue_date"
    DUE = "due_date"
    AMOUNT = "amount"
    CURRENCY = "currency"
    PAID = "paid_date"
    PAID_AMOUNT = "paid_amount"
    DISPUTE = "dispute_date"
    DELIVERY = "delivery"
    ORDER = "order_id"


class Ord:
    TABLE = "orders"
    ID = "order_id"
    CUSTOMER = "customer_id"
    DATE = "order_date"
    AMOUNT = "amount"
    PROMISED = "promised_date"
    CANCELLED = "cancelled"


class Bill:
    TABLE = "bills"
    ID = "bill_id"
    SUPPLIER = "supplier_id"
    ISSUE = "issue_date"
    DUE = "due_date"
    AMOUNT = "amount"
    CURRENCY = "currency"
    PAID = "paid_date"
    DISCOUNT_PCT = "discount_pct"
    DISCOUNT_DAYS = "discount_days"
    PO = "po_id"


class PO:
    TABLE = "purchase_orders"
    ID = "po_id"
    SUPPLIER = "supplier_id"
    DATE = "order_date"
    AMOUNT = "amount"
    EXPECTED = "expected_delivery_date"
    DELIVERED = "delivered_date"
    TERMS = "terms_days"


class Txn:
    TABLE = "cash_transactions"
    DATE = "date"
    AMOUNT = "amount"
    CATEGORY = "category"
    ACCOUNT = "account_id"


class Bal:
    TABLE = "cash_balances"
    DATE = "date"
    BALANCE = "balance"
    ACCOUNT = "account_id"


class Stock:
    TABLE = "inventory"
    DATE = "date"
    SKU = "sku"
    QUANTITY = "quantity"
    UNIT_COST = "unit_cost"


class Pay:
    TABLE = "payments"
    ID = "payment_id"
    INVOICE = "invoice_id"
    DATE = "date"
    AMOUNT = "amount"
    CURRENCY = "currency"


class Credit:
    TABLE = "credit_notes"
    ID = "credit_note_id"
    CUSTOMER = "customer_id"
    DATE = "date"
    AMOUNT = "amount"
    INVOICE = "invoice_id"
    CURRENCY = "currency"
    REASON = "reason"


class Fx:
    TABLE = "fx_rates"
    DATE = "date"
    CURRENCY = "currency"
    RATE = "rate"  # units of the base currency for one unit of ``currency``


class Act:
    TABLE = "actions"
    ID = "action_id"
    DATE = "date"
    KIND = "kind"
    INVOICE = "invoice_id"
    CUSTOMER = "customer_id"
    PROMISED = "promised_date"
    PROMISED_AMOUNT = "promised_amount"
    BY = "by"
    NOTE = "note"


DELIVERY_VALUES = ("electronic", "paper")
ACTION_KINDS = ("reminder", "call", "email", "letter", "warning", "hold", "legal", "promise", "dispute",
                "resolved", "note")


@dataclass(frozen=True)
class Check:
    """A check of a column's values: pandera's ``Check.<kind>(*args, error=error)``, built when a folder is validated
    (``schema``), so that a command reading a cached validation does not import pandera."""

    kind: Literal["gt", "ge", "in_range", "str_matches"]
    args: tuple
    error: str

    def pandera(self):
        import pandera.pandas as pa

        return getattr(pa.Check, self.kind)(*self.args, error=self.error)


@dataclass(frozen=True)
class Column:
    """One column of a table: whether the file must have it, whether a row may leave it empty, its kind."""

    name: str
    kind: Kind
    required: bool = True
    nullable: bool = False
    checks: tuple[Check, ...] = ()
    values: tuple[str, ...] = ()  # allowed values, for kind == "category"


@dataclass(frozen=True)
class RowRule:
    """A rule across columns of one row; rows where ``ok`` is False are rejected with ``problem``."""

    name: str
    column: str  # the column the reject report names
    columns: tuple[str, ...]  # the rule applies only when all of these are present in the row
    ok: object  # callable(DataFrame) -> boolean Series
    problem: str


@dataclass(frozen=True)
class Link:
    """A foreign key: ``column`` must name a used row of ``table``'s key ``to``."""

    column: str
    table: str
    to: str
    same: tuple[tuple[str, str], ...] = ()  # (our column, their column) pairs that must agree


@dataclass(frozen=True)
class Table:
    name: str
    required: bool
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()  # unique per row
    rules: tuple[RowRule, ...] = ()
    links: tuple[Link, ...] = ()
    # Which date column says when a row came to exist, and which dates are facts learned later.
    born: str | None = None
    learned: tuple[str, ...] = ()
    planned: tuple[str, ...] = field(default=())  # dates in the future by design (due, promised)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


_POSITIVE = (Check("gt", (0,), "must be > 0"),)
_CURRENCY = (Check("str_matches", (r"^[A-Z]{3}$",), "must be a three-letter currency code such as EUR"),)
_NON_NEGATIVE = (Check("ge", (0,), "must be >= 0"),)


def _not_before(later: str, earlier: str):
    return lambda df: ~(df[later] < df[earlier])


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            Cust.TABLE,
            required=True,
            columns=(
                Column(Cust.ID, "id"),
                Column(Cust.NAME, "text", required=False, nullable=True),
                Column(Cust.COUNTRY, "text", required=False, nullable=True),
                Column(Cust.INDUSTRY, "text", required=False, nullable=True),
                Column(Cust.CREDIT_LIMIT, "money", required=False, nullable=True, checks=_NON_NEGATIVE),
                Column(Cust.ONBOARDED, "date", required=False, nullable=True),
                Column(Cust.OWNER, "text", required=False, nullable=True),
            ),
            key=(Cust.ID,),
            born=Cust.ONBOARDED,
        ),
        Table(
            Inv.TABLE,
            required=True,
            columns=(
                Column(Inv.ID, "id"),
                Column(Inv.CUSTOMER, "id"),
                Column(Inv.ISSUE, "date"),
                Column(Inv.DUE, "date"),
                Column(Inv.AMOUNT, "money", checks=_POSITIVE),
                Column(Inv.CURRENCY, "text", required=False, nullable=True),
                Column(Inv.PAID, "date", required=False, nullable=True),
                Column(Inv.PAID_AMOUNT, "money", required=False, nullable=True, checks=_NON_NEGATIVE),
                Column(Inv.DISPUTE, "date", required=False, nullable=True),
                Column(Inv.DELIVERY, "category", required=False, nullable=True, values=DELIVERY_VALUES),
                Column(Inv.ORDER, "id", required=False, nullable=True),
            ),
            key=(Inv.ID,),
            rules=(
                RowRule("due_after_issue", Inv.DUE, (Inv.DUE, Inv.ISSUE),
                        _not_before(Inv.DUE, Inv.ISSUE), "due_date is before issue_date"),
                RowRule("paid_after_issue", Inv.PAID, (Inv.PAID, Inv.ISSUE),
                        _not_before(Inv.PAID, Inv.ISSUE), "paid_date is before issue_date"),
                RowRule("dispute_after_issue", Inv.DISPUTE, (Inv.DISPUTE, Inv.ISSUE),
                        _not_before(Inv.DISPUTE, Inv.ISSUE), "dispute_date is before issue_date"),
                RowRule("paid_amount_within_amount", Inv.PAID_AMOUNT, (Inv.PAID_AMOUNT, Inv.AMOUNT),
                        lambda df: ~(df[Inv.PAID_AMOUNT] > df[Inv.AMOUNT] * 1.0001),
                        "paid_amount is larger than amount"),
            ),
            links=(
                Link(Inv.CUSTOMER, Cust.TABLE, Cust.ID),
                Link(Inv.ORDER, Ord.TABLE, Ord.ID, same=((Inv.CUSTOMER, Ord.CUSTOMER),)),
            ),
            born=Inv.ISSUE,
            learned=(Inv.PAID, Inv.DISPUTE),
            planned=(Inv.DUE,),
        ),
        Table(
            Ord.TABLE,
            required=False,
            columns=(
                Column(Ord.ID, "id"),
                Column(Ord.CUSTOMER, "id"),
                Column(Ord.DATE, "date"),
                Column(Ord.AMOUNT, "money", checks=_POSITIVE),
                Column(Ord.PROMISED, "date", required=False, nullable=True),
                Column(Ord.CANCELLED, "bool", required=False, nullable=True),
            ),
            key=(Ord.ID,),
            rules=(
                RowRule("promised_after_order", Ord.PROMISED, (Ord.PROMISED, Ord.DATE),
                        _not_before(Ord.PROMISED, Ord.DATE), "promised_date is before order_date"),
            ),
            links=(Link(Ord.CUSTOMER, Cust.TABLE, Cust.ID),),
            born=Ord.DATE,
            planned=(Ord.PROMISED,),
        ),
        Table(
            Bill.TABLE,
            required=False,
            columns=(
                Column(Bill.ID, "id"),
                Column(Bill.SUPPLIER, "id"),
                Column(Bill.ISSUE, "date"),
                Column(Bill.DUE, "date"),
                Column(Bill.AMOUNT, "money", checks=_POSITIVE),
                Column(Bill.CURRENCY, "text", required=False, nullable=True),
                Column(Bill.PAID, "date", required=False, nullable=True),
                Column(Bill.DISCOUNT_PCT, "number", required=False, nullable=True,
                       checks=(Check("in_range", (0, 100), "must be between 0 and 100"),)),
                Column(Bill.DISCOUNT_DAYS, "number", required=False, nullable=True, checks=_NON_NEGATIVE),
                Column(Bill.PO, "id", required=False, nullable=True),
            ),
            key=(Bill.ID,),
            rules=(
                RowRule("due_after_issue", Bill.DUE, (Bill.DUE, Bill.ISSUE),
                        _not_before(Bill.DUE, Bill.ISSUE), "due_date is before issue_date"),
                RowRule("paid_after_issue", Bill.PAID, (Bill.PAID, Bill.ISSUE),
                        _not_before(Bill.PAID, Bill.ISSUE), "paid_date is before issue_date"),
            ),
            # There is no supplier master table in the contract: a supplier is checked against
            # the purchase order the bill names.
            links=(Link(Bill.PO, PO.TABLE, PO.ID, same=((Bill.SUPPLIER, PO.SUPPLIER),)),),
            born=Bill.ISSUE,
            learned=(Bill.PAID,),
            planned=(Bill.DUE,),
        ),
        Table(
            PO.TABLE,
            required=False,
            columns=(
                Column(PO.ID, "id"),
                Column(PO.SUPPLIER, "id"),
                Column(PO.DATE, "date"),
                Column(PO.AMOUNT, "money", checks=_POSITIVE),
                Column(PO.EXPECTED, "date", required=False, nullable=True),
                Column(PO.DELIVERED, "date", required=False, nullable=True),
                Column(PO.TERMS, "number", required=False, nullable=True, checks=_NON_NEGATIVE),
            ),
            key=(PO.ID,),
            rules=(
                RowRule("delivered_after_order", PO.DELIVERED, (PO.DELIVERED, PO.DATE),
                        _not_before(PO.DELIVERED, PO.DATE), "delivered_date is before order_date"),
            ),
            born=PO.DATE,
            learned=(PO.DELIVERED,),
            planned=(PO.EXPECTED,),
        ),
        Table(
            Txn.TABLE,
            required=False,
            columns=(
                Column(Txn.DATE, "date"),
                Column(Txn.AMOUNT, "money"),
                Column(Txn.CATEGORY, "text", required=False, nullable=True),
                Column(Txn.ACCOUNT, "id", required=False, nullable=True),
            ),
            born=Txn.DATE,
        ),
        Table(
            Bal.TABLE,
            required=False,
            columns=(
                Column(Bal.DATE, "date"),
                Column(Bal.BALANCE, "money"),
                Column(Bal.ACCOUNT, "id", required=False, nullable=True),
            ),
            key=(Bal.DATE, Bal.ACCOUNT),
            born=Bal.DATE,
        ),
        Table(
            Stock.TABLE,
            required=False,
            columns=(
                Column(Stock.DATE, "date"),
                Column(Stock.SKU, "id"),
                Column(Stock.QUANTITY, "number", checks=(Check("ge", (0,), "negative inventory"),)),
                Column(Stock.UNIT_COST, "money", checks=_NON_NEGATIVE),
            ),
            key=(Stock.DATE, Stock.SKU),
            born=Stock.DATE,
        ),
        # Receipts allocated to invoices; several per invoice are partial payments. An invoice's
        # paid date follows from them (features.ledger), so they exist from their own date.
        Table(
            Pay.TABLE,
            required=False,
            columns=(
                Column(Pay.ID, "id"),
                Column(Pay.INVOICE, "id"),
                Column(Pay.DATE, "date"),
                Column(Pay.AMOUNT, "money", checks=_POSITIVE),
                Column(Pay.CURRENCY, "text", required=False, nullable=True, checks=_CURRENCY),
            ),
            key=(Pay.ID,),
            links=(Link(Pay.INVOICE, Inv.TABLE, Inv.ID),),
            born=Pay.DATE,
        ),
        Table(
            Credit.TABLE,
            required=False,
            columns=(
                Column(Credit.ID, "id"),
                Column(Credit.CUSTOMER, "id"),
                Column(Credit.DATE, "date"),
                Column(Credit.AMOUNT, "money", checks=_POSITIVE),
                Column(Credit.INVOICE, "id", required=False, nullable=True),  # empty: unapplied, on the account
                Column(Credit.CURRENCY, "text", required=False, nullable=True, checks=_CURRENCY),
                Column(Credit.REASON, "text", required=False, nullable=True),
            ),
            key=(Credit.ID,),
            links=(
                Link(Credit.CUSTOMER, Cust.TABLE, Cust.ID),
                Link(Credit.INVOICE, Inv.TABLE, Inv.ID, same=((Credit.CUSTOMER, Inv.CUSTOMER),)),
            ),
            born=Credit.DATE,
        ),
        Table(
            Fx.TABLE,
            required=False,
            columns=(
                Column(Fx.DATE, "date"),
                Column(Fx.CURRENCY, "text", checks=_CURRENCY),
                Column(Fx.RATE, "number", checks=_POSITIVE),
            ),
            key=(Fx.DATE, Fx.CURRENCY),
            born=Fx.DATE,
        ),
        # The collections log. Declared and validated here; what it changes is the worklist's.
        Table(
            Act.TABLE,
            required=False,
            columns=(
                Column(Act.ID, "id"),
                Column(Act.DATE, "date"),
                Column(Act.KIND, "category", values=ACTION_KINDS),
                Column(Act.INVOICE, "id", required=False, nullable=True),
                Column(Act.CUSTOMER, "id", required=False, nullable=True),
                Column(Act.PROMISED, "date", required=False, nullable=True),
                Column(Act.PROMISED_AMOUNT, "money", required=False, nullable=True, checks=_POSITIVE),
                Column(Act.BY, "text", required=False, nullable=True),
                Column(Act.NOTE, "text", required=False, nullable=True),
            ),
            key=(Act.ID,),
            rules=(
                RowRule("invoice_or_customer", Act.CUSTOMER, (),
                        lambda df: df[Act.INVOICE].notna() | df[Act.CUSTOMER].notna(),
                        "an action needs an invoice_id or a customer_id"),
                RowRule("promise_has_date", Act.PROMISED, (Act.KIND,),
                        lambda df: ~((df[Act.KIND] == "promise") & df[Act.PROMISED].isna()).fillna(False),
                        "a promise needs a promised_date"),
                RowRule("promised_after_action", Act.PROMISED, (Act.PROMISED, Act.DATE),
                        _not_before(Act.PROMISED, Act.DATE), "promised_date is before the action's date"),
            ),
            links=(
                Link(Act.CUSTOMER, Cust.TABLE, Cust.ID),
                Link(Act.INVOICE, Inv.TABLE, Inv.ID),
            ),
            born=Act.DATE,
            planned=(Act.PROMISED,),
        ),
    )
}

_DTYPES: dict[str, object] = {
    "id": pd.StringDtype(),
    "text": pd.StringDtype(),
    "category": pd.StringDtype(),
    "date": "datetime64[ns]",
    "money": "float64",
    "number": "float64",
    "bool": pd.BooleanDtype(),
}


def dtype_of(column: Column) -> object:
    """The pandas dtype a column has once loaded."""
    return _DTYPES[column.kind]


def schema(table: Table):
    """Pandera schema (``pandera.pandas.DataFrameSchema``) of a loaded table's values (types already coerced, empties
    already checked).

    Missing values pass here: whether a value may be empty is judged while parsing, so that a
    row is reported once, as "missing value" or "unparseable", not twice.
    """
    import pandera.pandas as pa

    columns = {}
    for c in table.columns:
        checks = [check.pandera() for check in c.checks]
        if c.kind == "category" and c.values:
            checks.append(pa.Check.isin(list(c.values), error=f"must be one of {', '.join(c.values)}"))
        columns[c.name] = pa.Column(dtype_of(c), checks=checks, nullable=True, required=False, coerce=True)
    return pa.DataFrameSchema(columns, name=table.name, strict=False)


def empty_frame(table: Table) -> pd.DataFrame:
    """A typed table with no rows, every contract column present."""
    return pd.DataFrame({c.name: pd.Series([], dtype=dtype_of(c)) for c in table.columns})
