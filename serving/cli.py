"""The ``likvid`` command line: a thin layer over functions that tests call directly."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from features.load import Company, ContractError, Validation, validate
from features.synthetic import SyntheticConfig, generate, write

app = typer.Typer(
    name="likvid",
    help="Working-capital intelligence from a company's own ledgers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

DataArg = Annotated[Path, typer.Argument(help="Data folder: one NAME.csv or NAME.parquet per table.")]
MappingOpt = Annotated[Optional[Path], typer.Option("--mapping", help="YAML `table: {our_name: their_name}`.")]
AsOfOpt = Annotated[Optional[str], typer.Option("--as-of", help="Look at the data as known at the end of this "
                                                "day (YYYY-MM-DD; default: the last date in the data).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output file: .csv, or .parquet.")]


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                    console=console, transient=False)


def write_output(frame: pd.DataFrame, path: Path) -> None:
    """Write a command's output as CSV, or Parquet when the name ends in .parquet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, date_format="%Y-%m-%d")


def _fail(error: ContractError) -> None:
    err.print("[bold red]The data cannot be used:[/bold red]")
    for problem in error.problems:
        err.print(f"  [red]✗[/red] {problem}")
    raise typer.Exit(2)


def _print_validation(result: Validation, rejects_path: Optional[Path]) -> None:
    table = Table(title="Rows per table")
    for col in ("table", "file", "read", "used", "rejected"):
        table.add_column(col, justify="right" if col in ("read", "used", "rejected") else "left")
    for row in result.summary.itertuples(index=False):
        style = "yellow" if row.rows_rejected else ""
        table.add_row(row.table, row.file, f"{row.rows_read:,}", f"{row.rows_used:,}",
                      f"{row.rows_rejected:,}", style=style)
    console.print(table)
    for name, columns in result.ignored.items():
        if columns:
            console.print(f"[dim]{name}: ignored extra columns {', '.join(columns)}[/dim]")
    rejects = result.rejects
    if len(rejects):
        console.print(f"[yellow]{len(rejects):,} problems in "
                      f"{rejects.groupby('table')['row'].nunique().sum():,} rows set aside.[/yellow]")
        for r in rejects.head(20).itertuples(index=False):
            console.print(f"  {r.table} row {r.row}, {r.column}: {r.problem}")
        if len(rejects) > 20:
            console.print(f"  … and {len(rejects) - 20:,} more"
                          + ("" if rejects_path else " (write them all with --rejects FILE)"))
    else:
        console.print("[green]No row-level problems.[/green]")
    if rejects_path:
        write_output(rejects, rejects_path)
        console.print(f"Rejects report: {rejects_path}")


@app.command("generate")
def generate_cmd(
    out: Annotated[Path, typer.Argument(help="Folder to write the company into.")],
    customers: Annotated[int, typer.Option(min=1, help="Number of customers.")] = 200,
    years: Annotated[float, typer.Option(min=0.25, help="Years of history.")] = 3.0,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same company.")] = 0,
    end: Annotated[str, typer.Option(help="The company's last day (YYYY-MM-DD).")] = SyntheticConfig.end,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
) -> None:
    """Write a synthetic company in the contract's format."""
    if fmt not in ("csv", "parquet"):
        err.print(f"[red]--format must be csv or parquet, not {fmt!r}[/red]")
        raise typer.Exit(2)
    try:
        pd.Timestamp(end)
    except ValueError:
        err.print(f"[red]--end must be a date YYYY-MM-DD, not {end!r}[/red]")
        raise typer.Exit(2) from None
    config = SyntheticConfig(customers=customers, years=years, seed=seed, end=end)
    with _progress() as progress:
        task = progress.add_task(f"Generating {customers:,} customers over {years:g} years", total=None)
        started = time.perf_counter()
        tables = generate(config)
        progress.update(task, description=f"Writing {out}")
        write(tables, out, fmt)
        progress.update(task, description=f"Company written to {out}")
    counts = ", ".join(f"{len(v):,} {k}" for k, v in tables.items() if not k.startswith("truth"))
    console.print(f"{counts} in {time.perf_counter() - started:.1f} s")


@app.command("validate")
def validate_cmd(
    data: DataArg,
    mapping: MappingOpt = None,
    rejects: Annotated[Optional[Path], typer.Option("--rejects", help="Write the rejects report here (CSV).")] = None,
) -> None:
    """Check a data folder: summary, rejects report; exit 0 when usable, 2 on errors."""
    try:
        with _progress() as progress:
            progress.add_task(f"Validating {data}", total=None)
            result = validate(data, mapping)
    except ContractError as e:
        _fail(e)
    _print_validation(result, rejects)


def _as_of(value: Optional[str]) -> Optional[pd.Timestamp]:
    if value is None or value == "":
        return None
    try:
        return pd.Timestamp(value).normalize()
    except ValueError:
        err.print(f"[red]--as-of must be a date YYYY-MM-DD, not {value!r}[/red]")
        raise typer.Exit(2) from None


def _load(data: Path, mapping: Optional[Path]) -> Company:
    """Validate quietly and say how many rows were set aside; errors exit 2."""
    try:
        result = validate(data, mapping)
    except ContractError as e:
        _fail(e)
    rejected = int(result.summary["rows_rejected"].sum())
    if rejected:
        console.print(f"[yellow]{rejected:,} rows set aside by validation "
                      f"(see `likvid validate {data} --rejects FILE`).[/yellow]")
    return result.company


def _champion_error(e: LookupError) -> None:
    err.print(f"[red]{e}[/red]")
    raise typer.Exit(1)


@app.command("train")
def train_cmd(
    data: DataArg, as_of: AsOfOpt = None, mapping: MappingOpt = None,
    n_estimators: Annotated[int, typer.Option(min=1, help="Late-payment model: boosting rounds.")] = 150,
    learning_rate: Annotated[float, typer.Option(min=0.001, max=1.0, help="Late-payment model: learning rate.")] = 0.15,
    num_leaves: Annotated[int, typer.Option(min=2, help="Late-payment model: leaves per tree.")] = 7,
    customer_n_estimators: Annotated[int, typer.Option(min=1, help="Customer model (p_late_next): boosting rounds.")] = 200,
    customer_learning_rate: Annotated[float, typer.Option(
        min=0.001, max=1.0, help="Customer model (p_late_next): learning rate.")] = 0.05,
    customer_num_leaves: Annotated[int, typer.Option(min=2, help="Customer model (p_late_next): leaves per tree.")] = 7,
    warning_alpha: Annotated[float, typer.Option(
        min=1e-6, max=0.5, help="Early warnings: combined p-value below which a change is reported.")] = 0.05,
) -> None:
    """Train every model family, log the runs to MLflow, register and promote when not worse."""
    from features.customers import WarningConfig
    from training import tracking
    from training.customers import CustomerConfig
    from training.late_payment import LatePaymentConfig
    from training.pipeline import TrainConfig, train

    at = _as_of(as_of)
    company = _load(data, mapping)
    cfg = TrainConfig(late=LatePaymentConfig(n_estimators=n_estimators, learning_rate=learning_rate,
                                             num_leaves=num_leaves),
                      customers=CustomerConfig(n_estimators=customer_n_estimators,
                                               learning_rate=customer_learning_rate, num_leaves=customer_num_leaves),
                      warnings=WarningConfig(alpha=warning_alpha))
    console.print(f"MLflow tracking: {tracking.tracking_uri()}")
    with _progress() as progress:
        task = progress.add_task("Training", total=None)
        try:
            result = train(company, str(data), at, cfg=cfg, progress=lambda m: progress.update(task, description=m))
        except ValueError as e:
            err.print(f"[red]Cannot train: {e}[/red]")
            raise typer.Exit(2) from None
        progress.update(task, description="Trained")
    console.print(f"Trained as of {result.as_of:%Y-%m-%d}; holdout: snapshots after {result.origin:%Y-%m-%d}.")
    for title, frame in (("Late payment, holdout", result.late_metrics), ("Payment timing, holdout", result.timing_metrics)):
        table = Table(title=title)
        table.add_column("model")
        for col in frame.columns:
            table.add_column(col, justify="right")
        for name, row in frame.iterrows():
            table.add_row(name, *[f"{v:,.0f}" if k == "n" else f"{v:.4f}" for k, v in row.items()])
        console.print(table)
    for name, decision in result.decisions.items():
        verdict = "[green]promoted to champion[/green]" if decision.promote else "[yellow]kept the champion[/yellow]"
        console.print(f"{name} v{result.versions[name]}: {verdict} ({decision.reason})")


@app.command("score")
def score_cmd(data: DataArg, out: OutOpt, as_of: AsOfOpt = None, mapping: MappingOpt = None) -> None:
    """Risk for every invoice open at as-of, with reasons, from the champion models."""
    from training.pipeline import score

    at = _as_of(as_of)
    company = _load(data, mapping)
    with _progress() as progress:
        progress.add_task("Scoring open invoices", total=None)
        try:
            scored = score(company, at)
        except LookupError as e:
            _champion_error(e)
    write_output(scored, out)
    bands = scored["risk_band"].value_counts().to_dict()
    console.print(f"{len(scored):,} open invoices scored -> {out}  ({', '.join(f'{k}: {v}' for k, v in bands.items())})")


@app.command("customers")
def customers_cmd(data: DataArg, out: OutOpt, as_of: AsOfOpt = None, mapping: MappingOpt = None,
                  config: Annotated[Optional[Path], typer.Option("--config", help="A likvid.yaml policy (default: "
                                    "DATA/likvid.yaml if present, else the built-in defaults).")] = None) -> None:
    """Segment, credit grade, recommended limit and early warning for every customer, from the champion models."""
    from training.customers import customer_risk

    at, policy = _as_of(as_of), _policy(data, config)
    company = _load(data, mapping)
    with _progress() as progress:
        progress.add_task("Grading customers", total=None)
        try:
            rows = customer_risk(company, at, policy=policy)
        except LookupError as e:
            _champion_error(e)
    write_output(rows, out)
    grades = rows["credit_grade"].value_counts().reindex(["AAA", "AA", "A", "B", "C"]).fillna(0).astype(int)
    console.print(f"{len(rows):,} customers -> {out}  (grades {', '.join(f'{k}: {v}' for k, v in grades.items())}; "
                  f"{int((rows['warning'] != '').sum())} warnings)")


WeeksOpt = Annotated[int, typer.Option("--weeks", min=1, max=52, help="Weeks ahead (1-52).")]


@app.command("forecast")
def forecast_cmd(
    data: DataArg, out: OutOpt, as_of: AsOfOpt = None, weeks: WeeksOpt = 13,
    customer_delay_days: Annotated[float, typer.Option(help="What if customers pay this many days later.")] = 0.0,
    sales_change_pct: Annotated[float, typer.Option(help="What if sales not yet ordered change by this %.")] = 0.0,
    supplier_lead_time_days: Annotated[float, typer.Option(help="What if purchase orders arrive this many days "
                                                           "later.")] = 0.0,
    paths: Annotated[int, typer.Option(min=20, help="Monte Carlo paths.")] = 1000,
    config: Annotated[Optional[Path], typer.Option("--config", help="A likvid.yaml policy (cash floor).")] = None,
    mapping: MappingOpt = None,
) -> None:
    """Weekly cash forecast with downside / base / upside (p10 / p50 / p90) and what-if shocks."""
    from training.cash_forecast import Shocks, forecast

    at = _as_of(as_of)
    try:
        shocks = Shocks(customer_delay_days, sales_change_pct, supplier_lead_time_days)
    except ValueError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    policy = _policy(data, config)
    company = _load(data, mapping)
    with _progress() as progress:
        progress.add_task(f"Simulating {paths:,} cash paths over {weeks} weeks", total=None)
        try:
            rows = forecast(company, at, weeks, shocks, policy=policy, paths=paths)
        except LookupError as e:
            _champion_error(e)
    write_output(rows, out)
    table = Table(title=f"Cash forecast from {rows['week_start'].iloc[0] - pd.Timedelta(days=1):%Y-%m-%d}")
    for col in ("week", "ends", "inflow p50", "outflow p50", "balance p10", "balance p50", "balance p90"):
        table.add_column(col, justify="right")
    for r in rows.itertuples(index=False):
        table.add_row(str(r.week), f"{r.week_end:%Y-%m-%d}", f"{r.inflow_p50:,.0f}", f"{r.outflow_p50:,.0f}",
                      f"{r.balance_p10:,.0f}", f"{r.balance_p50:,.0f}", f"{r.balance_p90:,.0f}",
                      style="red" if r.below_floor else "")
    console.print(table)
    flagged = rows.loc[rows["below_floor"], "week"].tolist()
    console.print(f"{len(rows)} weeks -> {out}; " + (f"[red]p10 balance below the cash floor "
                  f"{policy.cash_floor:,.0f} in weeks {', '.join(map(str, flagged))}[/red]" if flagged
                  else f"p10 balance stays above the cash floor {policy.cash_floor:,.0f}"))


@app.command("backtest")
def backtest_cmd(
    data: DataArg, as_of: AsOfOpt = None, weeks: WeeksOpt = 13,
    every_weeks: Annotated[int, typer.Option(min=1, help="Weeks between origins.")] = 4,
    span_weeks: Annotated[int, typer.Option(min=0, help="Origins lie within this many weeks.")] = 52,
    origins: Annotated[Optional[int], typer.Option(min=1, help="Only the latest N origins.")] = None,
    paths: Annotated[int, typer.Option(min=20, help="Monte Carlo paths per origin.")] = 500,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write every origin's weeks here.")] = None,
    mapping: MappingOpt = None,
) -> None:
    """Rolling-origin backtest of the cash forecast against four baselines, logged to MLflow."""
    from training import tracking
    from training.backtest import BacktestConfig, backtest, log_backtest

    at = _as_of(as_of)
    company = _load(data, mapping)
    cfg = BacktestConfig(every_weeks=every_weeks, span_weeks=span_weeks, weeks=weeks, origins=origins, paths=paths)
    with _progress() as progress:
        task = progress.add_task("Backtesting", total=None)
        try:
            result = backtest(company, at, cfg, progress=lambda m: progress.update(task, description=m))
        except ValueError as e:
            err.print(f"[red]Cannot backtest: {e}[/red]")
            raise typer.Exit(2) from None
        progress.update(task, description="Logging to MLflow")
        run_id = log_backtest(result, str(data), cfg)
    table = Table(title=f"{len(result.origins)} origins, {result.origins[0]:%Y-%m-%d} to "
                  f"{result.origins[-1]:%Y-%m-%d}, {weeks} weeks each")
    wide = result.summary.pivot_table(index=["metric", "method"], columns="target", values="value", sort=False)
    table.add_column("figure")
    for col in wide.columns:
        table.add_column(col, justify="right")
    for (metric, method), row in wide.iterrows():
        table.add_row(f"{metric} {method}", *["—" if pd.isna(v) else f"{v:.3f}" for v in row])
    console.print(table)
    if out is not None:
        write_output(result.weekly, out)
        console.print(f"Every origin's weeks -> {out}")
    console.print(f"MLflow run {run_id} at {tracking.tracking_uri()} (fan chart, error by horizon)")


PolicyOpt = Annotated[Optional[Path], typer.Option("--config", help="A likvid.yaml policy (default: DATA/likvid.yaml "
                                                   "if present, else the built-in defaults).")]


def _policy(data: Path, config: Optional[Path]):
    """The policy for a data folder; a bad configuration exits 2 with its message."""
    from features.policy import PolicyError, load_policy

    try:
        return load_policy(data, config)
    except PolicyError as e:
        err.print(f"[bold red]The configuration cannot be used:[/bold red]\n{e}")
        raise typer.Exit(2) from None


@app.command("kpis")
def kpis_cmd(data: DataArg, out: OutOpt, as_of: AsOfOpt = None, config: PolicyOpt = None,
             mapping: MappingOpt = None) -> None:
    """Working-capital figures at as-of: DSO, DPO, DIO, CCC, aging, overdue and bad-debt shares, stock, alerts."""
    from features.working_capital import kpis

    at, policy = _as_of(as_of), _policy(data, config)
    figures = kpis(_load(data, mapping), at, policy)
    write_output(figures, out)
    table = Table(title="Working capital")
    for col in ("figure", "value", "unit"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for r in figures.itertuples(index=False):
        value = "—" if pd.isna(r.value) else f"{r.value:.1%}" if r.unit == "share" else f"{r.value:,.1f}"
        style = "red" if r.name.startswith("alert_") and r.value == 1 else "dim" if pd.isna(r.value) else ""
        table.add_row(r.name, value, r.unit, style=style)
    console.print(table)
    console.print(f"{len(figures)} figures with their definitions -> {out}")


TopOpt = Annotated[Optional[int], typer.Option("--top", min=1, help="Only the first N invoices.")]


@app.command("worklist")
def worklist_cmd(data: DataArg, out: OutOpt, as_of: AsOfOpt = None, top: TopOpt = None, config: PolicyOpt = None,
                 mapping: MappingOpt = None) -> None:
    """The open invoices to act on first, with the dunning step and why, from the champion models."""
    from training.collections import NO_ACTION, worklist

    at, policy = _as_of(as_of), _policy(data, config)
    company = _load(data, mapping)
    with _progress() as progress:
        progress.add_task("Ranking open invoices by the cash that acting brings in", total=None)
        try:
            rows = worklist(company, at, top, policy)
        except LookupError as e:
            _champion_error(e)
    write_output(rows, out)
    acted = rows[rows["action"] != NO_ACTION]
    counts = ", ".join(f"{k}: {v}" for k, v in acted["action"].value_counts().items())
    console.print(f"{len(rows):,} open invoices ranked -> {out}  ({counts or 'no action due'}); expected cash "
                  f"from acting: {acted['expected_gain'].sum():,.0f}")


@app.command("discounts")
def discounts_cmd(data: DataArg, out: OutOpt, as_of: AsOfOpt = None, config: PolicyOpt = None,
                  mapping: MappingOpt = None) -> None:
    """For each open bill with early-payment terms: take the discount or not, and what it earns."""
    from training.collections import discounts

    at, policy = _as_of(as_of), _policy(data, config)
    company = _load(data, mapping)
    with _progress() as progress:
        progress.add_task("Forecasting cash and deciding discounts", total=None)
        try:
            rows = discounts(company, at, policy)
        except LookupError as e:
            _champion_error(e)
        except ValueError as e:
            err.print(f"[red]Cannot decide discounts: {e}[/red]")
            raise typer.Exit(2) from None
    write_output(rows, out)
    taken = rows[rows["take"].astype(bool)]
    saved = (taken["amount"] * taken["discount_pct"] / 100).sum()
    console.print(f"{len(rows):,} open bills with early-payment terms -> {out}; take {len(taken):,} "
                  f"(saves {saved:,.0f}); cost of capital {policy.cost_of_capital:.1%}, cash floor "
                  f"{policy.cash_floor:,.0f}")


ServeDataOpt = Annotated[Optional[Path], typer.Option("--data", help="Data folder whose history the service scores "
                                                    "against (default: the champion's training data).")]
ServeAsOfOpt = Annotated[Optional[str], typer.Option("--as-of", help="The service's as-of date (default: the "
                                                     "champion's training as-of).")]
PortOpt = Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")]
HostOpt = Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="A likvid.yaml policy (default: DATA/likvid.yaml).")]


def _start_service(data: Optional[Path], at: Optional[pd.Timestamp], config: Optional[Path], host: str, port: int,
                   serve: bool = True) -> None:
    """Check that the service can start (models, data, policy), then serve it until stopped."""
    import os

    from serving import service

    os.environ.update(service.serve_environment(data, at, config))
    with _progress() as progress:
        progress.add_task("Loading the champion models and the served history", total=None)
        try:
            state = service.load_state(service.Settings.from_env())
        except service.StartupError as e:
            err.print(f"[bold red]The service cannot start:[/bold red] {e}")
            raise typer.Exit(1) from None
    versions = ", ".join(f"{c.name} v{c.version}" for c in state.cards)
    console.print(f"Serving {versions} over {state.data} as of {state.at:%Y-%m-%d} "
                  f"({len(state.customers):,} customers, {state.open_invoices:,} open invoices).")
    if os.environ.get(service.ENV_TOKEN):
        console.print(f"[green]{service.ENV_TOKEN} is set: every endpoint but /livez, /readyz and /healthz "
                      "needs Authorization: Bearer <token>.[/green]")
    else:
        console.print(f"[yellow]{service.ENV_TOKEN} is not set: the API is open to anyone who can reach "
                      f"{host}:{port}. Set it to require a bearer token.[/yellow]")
    console.rule("[bold green]try it[/bold green]")
    for call in service.curl_examples(f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}", state):
        console.print(call, soft_wrap=True, highlight=False)
    console.print(f"API docs: http://{host}:{port}/   MLflow UI: .venv/bin/mlflow ui --backend-store-uri "
                  f"{os.environ['MLFLOW_TRACKING_URI']}  (then http://127.0.0.1:5000)")
    if serve:
        console.print("Ctrl+C stops the server.")
        service.serve(host, port)


@app.command("serve")
def serve_cmd(data: ServeDataOpt = None, as_of: ServeAsOfOpt = None, port: PortOpt = 3000,
              host: HostOpt = "127.0.0.1", config: ConfigOpt = None) -> None:
    """The HTTP API (BentoML) over the champion models and the company's history."""
    _start_service(data, _as_of(as_of), config, host, port)


@app.command("build")
def build_cmd() -> None:
    """Import the champion models into BentoML's model store and build a deployable bento (bentofile.yaml)."""
    from serving import service

    with _progress() as progress:
        task = progress.add_task("Importing the champion models into BentoML's model store", total=None)
        try:
            imported = service.import_champions()
        except LookupError as e:
            _champion_error(e)
        progress.update(task, description="Building the bento from bentofile.yaml")
        bento = service.build_bento()
    for tag in imported:
        console.print(f"model {tag}")
    console.print(f"[green]Bento {bento.tag} built[/green] at {bento.path}\n"
                  f"Serve it: LIKVID_MODEL_SOURCE=bento LIKVID_DATA=DATA .venv/bin/bentoml serve {bento.tag}\n"
                  f"Containerise it (needs Docker): .venv/bin/bentoml containerize {bento.tag}")


@app.command("demo")
def demo_cmd(
    workdir: Annotated[Path, typer.Option(help="Folder for the demo company and its outputs.")] = Path("demo"),
    customers: Annotated[int, typer.Option(min=1)] = 300,
    years: Annotated[float, typer.Option(min=0.5)] = 3.0,
    seed: Annotated[int, typer.Option()] = 7,
    port: PortOpt = 3000,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="End by serving the HTTP API.")] = True,
) -> None:
    """The main job: make a synthetic company, validate it, train every model (MLflow), score, and serve."""
    from serving import service

    data = workdir / "company"
    console.rule("[bold]likvid demo[/bold]")
    console.print("[bold]1/5[/bold] Generating a synthetic company")
    generate_cmd(data, customers=customers, years=years, seed=seed)
    console.print("[bold]2/5[/bold] Validating it against the data contract")
    validate_cmd(data, mapping=None, rejects=workdir / "rejects.csv")
    console.print("[bold]3/5[/bold] Training the models (tracked in MLflow)")
    train_cmd(data, as_of=None, mapping=None)
    console.print("[bold]4/5[/bold] Scoring the open invoices")
    score_cmd(data, out=workdir / "scores.csv", as_of=None, mapping=None)
    console.print(f"Scores with reasons: {workdir / 'scores.csv'}")
    console.print("[bold]5/5[/bold] Serving the HTTP API on localhost")
    console.print(f"To require a token, start it with {service.ENV_TOKEN} set, e.g. "
                  f"`export {service.ENV_TOKEN}=$(openssl rand -hex 16)` before `make demo` or `likvid serve`; "
                  "the calls below send it.")
    _start_service(data.resolve(), None, None, "127.0.0.1", port, serve=serve)


if __name__ == "__main__":
    app()
