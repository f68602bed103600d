"""The ``likvid`` command line: a thin layer over functions that tests call directly."""

from __future__ import annotations

import atexit
import dataclasses
import gc
import importlib
import inspect
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from features.asof import parse_as_of, why_none_open
from features.limits import MONTHS, PATHS, WEEKS
from features.load import Company, ContractError, Validation, validate
from features.policy import GRADES, Dunning, Policy
from features.synthetic import SyntheticConfig, generate, write
from features.working_capital import COUNT, DAYS, FLAG, KPI_COLUMNS, SHARE
from serving.guard import HEADER_SECONDS, MAX_CONNECTIONS
from training.distributed import SCHEDULER_ENV, ClusterUnavailable

app = typer.Typer(
    name="likvid",
    help="Working-capital intelligence from a company's own ledgers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)
_OWN_PROCESS = False  # the process is the ``likvid`` command's alone (``run``), not a caller's that runs ``app``
# At exit the interpreter no longer traces every object left for reference cycles: a command's objects die with
# its process either way (files were closed where written, the exit frees the memory), and at 985,325 invoices
# that last collection took 0.45-0.55 s of the forecast's 6.2-6.8 s (in process, this host).
atexit.register(gc.freeze)

# Third-party chatter that says nothing to a likvid user; what is ours is fixed at its cause instead.
QUIET_WARNINGS = (
    (UserWarning, r"Hint: Inferred schema contains integer column"),  # MLflow, on examples it logs
    (UserWarning, r"LightGBM binary classifier with TreeExplainer"),  # SHAP's note on its output format
    (FutureWarning, r"The NumPy global RNG was seeded"),  # SHAP's plots, where a caller seeded NumPy
    (Warning, r"IProgress not found"),  # tqdm (imported by MLflow) in a notebook kernel without ipywidgets
)
QUIET_LOGS = ("Passing a Python object as `python_model`",)  # MLflow's CloudPickle notice on every model logged


def _drop_quiet_logs(record: logging.LogRecord) -> bool:
    return not any(text in str(record.msg) for text in QUIET_LOGS)


def quiet_third_party() -> None:
    """Silence third-party warnings, info logs and progress bars for this process and the ones it starts
    (server workers inherit the environment). A setting the user made in the environment is kept."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for category, message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    pyfunc_log = logging.getLogger("mlflow.pyfunc")
    if _drop_quiet_logs not in pyfunc_log.filters:
        pyfunc_log.addFilter(_drop_quiet_logs)


@app.callback()
def main() -> None:
    """Working-capital intelligence from a company's own ledgers."""
    quiet_third_party()


DataArg = Annotated[Path, typer.Argument(help="Data folder: one NAME.csv or NAME.parquet per table.")]


def _optional_path(value: str) -> Path | None:
    """An empty value is no file, as MLflow passes an unset project parameter (``--config ""``)."""
    return Path(value) if value else None


MappingOpt = Annotated[Optional[Path], typer.Option("--mapping", parser=_optional_path, metavar="PATH",
                                                    help="A mapping file: how the export names and writes its tables "
                                                    "and columns (default: DATA/mapping.yaml if present).")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", parser=_optional_path, metavar="PATH",
                                                   help="A likvid.yaml policy (default: DATA/likvid.yaml if present, "
                                                   "else the built-in defaults).")]
AsOfOpt = Annotated[Optional[str], typer.Option("--as-of", help="Look at the data as known at the end of this "
                                                "day (YYYY-MM-DD; default: the last date in the data).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output file: .csv, or .parquet.")]
SchedulerOpt = Annotated[Optional[str], typer.Option("--scheduler", envvar=SCHEDULER_ENV, metavar="ADDRESS",
                                                     help="Run on the Dask cluster of this scheduler (e.g. "
                                                     "tcp://10.0.0.5:8786); default: in this process.")]

# Output columns that hold money: written rounded to cents (probabilities and days keep their own rounding).
MONEY_COLUMNS = frozenset({
    "amount", "amount_open", "amount_open_doc", "expected_gain",  # score, worklist, discounts
    "recommended_credit_limit", "open_amount", "overdue_amount",  # customers
    *(f"{flow}_p{q}" for flow in ("inflow", "outflow", "net", "balance") for q in (10, 50, 90)),  # forecast
    "ar_open", "ar_future", "ap_open", "ap_future", "other",
})
NOT_MONEY_UNITS = frozenset({DAYS, SHARE, COUNT, FLAG})  # a kpis row in any other unit is an amount of money
Step = Callable[[str], None]


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                    console=console, transient=False)


def _bar() -> Progress:
    """A progress bar for a long step: what is being done, how far, how long so far and still to go."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console, transient=False)


@contextmanager
def _steps(total: int) -> Iterator[Step]:
    """A bar over a command's ``total`` steps; each call names the next step and counts the one before as done."""
    with _bar() as bar:
        task = bar.add_task("Starting", total=total)
        started = []

        def step(description: str) -> None:
            if started:
                bar.advance(task)
            started.append(description)
            bar.update(task, description=description)

        yield step
        bar.update(task, completed=total, description=started[-1] if started else "Done")


def _as_of(value: Optional[str]) -> Optional[pd.Timestamp]:
    """The command's ``--as-of`` (``None``: the last known date); a value that is not a day exits 2."""
    try:
        return parse_as_of(value, "--as-of")
    except ValueError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None


def _policy(data: Optional[Path], config: Optional[Path]) -> Policy:
    """The command's policy: ``--config``, else ``DATA/likvid.yaml``, else the defaults; a bad one exits 2."""
    from features.policy import PolicyError, load_policy

    try:
        return load_policy(data, config)
    except PolicyError as e:
        err.print(f"[bold red]The configuration cannot be used:[/bold red]\n{e}")
        raise typer.Exit(2) from None


def money_to_cents(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its money (``MONEY_COLUMNS``, and ``kpis`` values in a currency) rounded to cents."""
    money = [c for c in frame.columns if c in MONEY_COLUMNS and pd.api.types.is_float_dtype(frame[c])]
    out = frame.assign(**{c: frame[c].round(2) for c in money})
    if list(frame.columns) == KPI_COLUMNS:
        amounts = ~out["unit"].isin(NOT_MONEY_UNITS)
        out.loc[amounts, "value"] = out.loc[amounts, "value"].round(2)
    return out


def write_output(frame: pd.DataFrame, path: Path) -> None:
    """Write a command's output as CSV, or Parquet when the name ends in .parquet; money in cents."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = money_to_cents(frame)
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
    """The summary a person reads: rows per table, what was detected, the rejects by cause with hints."""
    if result.mapping:
        console.print(f"Mapping: {result.mapping}")
    table = Table(title="Rows per table")
    for col in ("table", "file", "read", "used", "rejected", "of which knock-on"):
        table.add_column(col, justify="left" if col in ("table", "file") else "right")
    for row in result.summary.itertuples(index=False):
        style = "yellow" if row.rows_rejected else ""
        table.add_row(row.table, row.file, f"{row.rows_read:,}", f"{row.rows_used:,}",
                      f"{row.rows_rejected:,}", f"{row.rows_knock_on:,}" if row.rows_knock_on else "", style=style)
    console.print(table)
    for name, settings in result.detected.items():
        shown = ", ".join(f"{k} {v!r}" for k, v in settings.items())
        console.print(f"[cyan]{name}: detected (not declared) {shown}[/cyan]")
    for name, columns in result.ignored.items():
        if columns:
            console.print(f"[dim]{name}: ignored extra columns {', '.join(columns)}[/dim]")
    rejects, diagnosis = result.rejects, result.diagnosis
    if len(rejects):
        console.print(f"[yellow]{len(rejects):,} problems in "
                      f"{rejects.groupby('table')['row'].nunique().sum():,} rows set aside.[/yellow]")
        causes = Table(title="Rejects by cause")
        for col in ("table", "column", "problem", "rows", "examples", "hint"):
            causes.add_column(col, justify="right" if col == "rows" else "left", overflow="fold")
        for r in diagnosis.itertuples(index=False):
            causes.add_row(r.table, r.column, ("knock-on: " if r.knock_on else "") + r.problem, f"{r.rows:,}",
                           r.examples, r.hint, style="dim" if r.knock_on else "")
        console.print(causes)
        if not rejects_path:
            console.print("  (every reject, row by row: --rejects FILE)")
    else:
        console.print("[green]No row-level problems.[/green]")
    if rejects_path:
        write_output(rejects, rejects_path)
        console.print(f"Rejects report ({len(rejects):,} lines): {rejects_path}")


def _policy_bounds(model: type, name: str) -> dict[str, float]:
    """typer's ``min`` and ``max`` for a policy setting, from its pydantic field (the bound's one home)."""
    meta = model.model_fields[name].metadata
    return {"min": next(m.ge for m in meta if hasattr(m, "ge")), "max": next(m.le for m in meta if hasattr(m, "le"))}


@app.command("generate")
def generate_cmd(
    out: Annotated[Path, typer.Argument(help="Folder to write the company into.")],
    customers: Annotated[int, typer.Option(min=1, help="Number of customers.")] = 200,
    years: Annotated[float, typer.Option(min=0.25, help="Years of history.")] = 3.0,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same company.")] = 0,
    end: Annotated[str, typer.Option(help="The company's last day (YYYY-MM-DD).")] = SyntheticConfig.end,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    control_share: Annotated[float, typer.Option(
        **_policy_bounds(Dunning, "control_share"),
        help="Share of invoices the credit team holds back unchased (the control group), written to the "
             "company's likvid.yaml as dunning.control_share.")] = SyntheticConfig.control_share,
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
    config = SyntheticConfig(customers=customers, years=years, seed=seed, end=end, control_share=control_share)
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
    config: ConfigOpt = None,
) -> None:
    """Check a data folder: summary, rejects report; exit 0 when usable, 2 on errors."""
    policy = _policy(data, config)  # a bad likvid.yaml is reported before the data is read
    try:
        with _progress() as progress:
            progress.add_task(f"Validating {data}", total=None)
            result = validate(data, mapping, policy=policy)
    except ContractError as e:
        _fail(e)
    _print_validation(result, rejects)


def _load(data: Path, mapping: Optional[Path], policy: Optional[Policy] = None) -> Company:
    """Validate quietly and say how many rows were set aside and what was detected; errors exit 2. ``policy``
    (the command's ``_policy``) gives the base currency, so that ``--config`` reaches validation too."""
    try:
        result = validate(data, mapping, policy=policy)
    except ContractError as e:
        _fail(e)
    for name, settings in result.detected.items():
        console.print(f"[cyan]{name}: detected {', '.join(f'{k} {v!r}' for k, v in settings.items())}[/cyan]")
    rejected = int(result.summary["rows_rejected"].sum())
    if rejected:
        knock_on = int(result.summary["rows_knock_on"].sum())
        console.print(f"[yellow]{rejected:,} rows set aside by validation"
                      + (f" ({knock_on:,} only because a row they refer to was)" if knock_on else "")
                      + f" (see `likvid validate {data}`).[/yellow]")
    return result.company


def _champion_error(e: LookupError) -> None:
    err.print(f"[red]{e}[/red]")
    raise typer.Exit(1)


def _cluster_error(e: ClusterUnavailable) -> None:
    err.print(f"[red]{e} (--scheduler or {SCHEDULER_ENV}).[/red]")
    raise typer.Exit(2)


@app.command("train")
def train_cmd(
    data: DataArg, as_of: AsOfOpt = None, mapping: MappingOpt = None, config: ConfigOpt = None,
    n_estimators: Annotated[int, typer.Option(min=1, help="Late-payment model: boosting rounds.")] = 150,
    learning_rate: Annotated[float, typer.Option(min=0.001, max=1.0, help="Late-payment model: learning rate.")] = 0.15,
    num_leaves: Annotated[int, typer.Option(min=2, help="Late-payment model: leaves per tree.")] = 7,
    customer_n_estimators: Annotated[int, typer.Option(
        min=1, help="Customer model (p_late_next): boosting rounds.")] = 200,
    customer_learning_rate: Annotated[float, typer.Option(
        min=0.001, max=1.0, help="Customer model (p_late_next): learning rate.")] = 0.05,
    customer_num_leaves: Annotated[int, typer.Option(min=2, help="Customer model (p_late_next): leaves per tree.")] = 7,
    warning_alpha: Annotated[Optional[float], typer.Option(
        min=1e-6, max=0.5, show_default="features.customers.WarningConfig.alpha",  # not imported for every command
        help="Early warnings: combined p-value below which a change is reported.")] = None,
    threads: Annotated[int, typer.Option(
        min=0, help="LightGBM threads per fit of the late-payment and timing models; 0: one per core "
                    "(os.cpu_count()), faster on a machine of its own; the default 1 is faster on a shared "
                    "one. A fit is bit-for-bit repeatable at any count; fits on different counts may differ.")] = 1,
) -> None:
    """Train every model family for the company: evaluate at as-of minus 13 weeks, register the models
    refitted on everything known at as-of, and promote each when its recipe is not worse than the champion's."""
    from features.customers import WarningConfig
    from features.policy import PolicyError
    from training import tracking
    from training.customers import CustomerConfig
    from training.late_payment import LatePaymentConfig
    from training.pipeline import TrainConfig, train

    at, policy = _as_of(as_of), _policy(data, config)
    try:
        key = policy.company_key(data)
    except PolicyError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    threads = threads or os.cpu_count() or 1
    cfg = TrainConfig.from_policy(
        policy, late=LatePaymentConfig(n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
                                       threads=threads),
        customers=CustomerConfig(n_estimators=customer_n_estimators, learning_rate=customer_learning_rate,
                                 num_leaves=customer_num_leaves),
        warnings=WarningConfig() if warning_alpha is None else WarningConfig(alpha=warning_alpha))
    cfg = dataclasses.replace(cfg, timing=dataclasses.replace(cfg.timing, threads=threads))
    company = _load(data, mapping, policy)
    console.print(f"Company {key}; MLflow tracking: {tracking.shown_uri()}")
    with _bar() as bar:
        task = bar.add_task("Training", total=len(tracking.FAMILIES))

        def progress(done: int, total: int, description: str) -> None:
            bar.update(task, completed=done, total=total, description=description)

        try:
            result = train(company, str(data), at, cfg=cfg, progress=progress, policy=policy)
        except (ValueError, tracking.RegistryBusy) as e:
            err.print(f"[red]Cannot train: {e}[/red]")
            raise typer.Exit(2) from None
    console.print(f"Company {result.company}: models fitted on everything known at {result.as_of:%Y-%m-%d}; "
                  f"the holdout figures below are of the same recipes fitted at {result.origin:%Y-%m-%d} "
                  "and scored on what followed.")
    for title, frame in (("Late payment, holdout", result.late_metrics),
                         ("Payment timing, holdout", result.timing_metrics)):
        table = Table(title=title)
        table.add_column("model")
        for col in frame.columns:
            table.add_column(col, justify="right")
        for name, row in frame.iterrows():
            table.add_row(name, *[f"{v:,.0f}" if k == "n" else f"{v:.4f}" for k, v in row.items()])
        console.print(table)
    for name, decision in result.decisions.items():
        verdict = "[green]promoted to champion[/green]" if decision.promote else "[yellow]kept the champion[/yellow]"
        console.print(f"{tracking.model_name(name, result.company)} v{result.versions[name]}: {verdict} "
                      f"({decision.reason})")

def _read(data: Path, mapping: Optional[Path], step: Step, policy: Optional[Policy] = None,
          warm: tuple[str, ...] = ()) -> Company:
    step(f"Reading and validating {data}")
    _warm(*warm)
    return _load(data, mapping, policy)


# For a command whose models run compiled kernels (the payment-timing model's, the simulation's): after their
# modules, numba's first kernel sets up its CPU target.
_WARM_KERNELS = "training.cores:warm_kernels"


def _predicting(*modules: str) -> tuple[str, ...]:
    """``_warm``'s entries for a command that only predicts with LightGBM (score, worklist, forecast): in the
    command's own process (``run``), LightGBM is imported first, without scikit-learn
    (``training.cores.lightgbm_without_sklearn``). At 985,325 invoices, alternated, the forecast took 5.9 / 5.8 /
    6.6 / 7.2 s against 7.7 / 6.9 / 7.2 / 8.3 s imported as before (this host)."""
    return (("training.cores:lightgbm_without_sklearn",) if _OWN_PROCESS else ()) + modules


def _warm(*modules: str) -> threading.Thread | None:
    """Import ``modules`` on a thread while the caller reads the data folder (an entry ``module:function`` also
    calls the function once its module is imported): Arrow decodes the validated Parquet outside the GIL, so the
    two can overlap, and the models' modules take 1.5-2 s to import (lightgbm imports scikit-learn and
    scipy.stats, unless ``_predicting`` imported it first without them). The caller's own import of them waits for
    the thread's (the import lock), and one that fails there fails again in the caller, with its error. At 985,325
    invoices, reading the cached folder and importing ``training.scoring`` took 2.29 s (median of 8) this way
    against 2.69 s one after the other."""

    def load() -> None:
        for entry in modules:
            module, _, function = entry.partition(":")
            try:
                loaded = importlib.import_module(module)
                if function:
                    getattr(loaded, function)()
            except Exception:  # noqa: BLE001 (the caller's own import raises it again, in its own thread)
                return

    if not modules:
        return None
    thread = threading.Thread(target=load, name="likvid-warm-imports", daemon=True)
    thread.start()
    return thread


@app.command("score")
def score_cmd(data: DataArg, out: OutOpt, as_of: AsOfOpt = None, mapping: MappingOpt = None,
              config: ConfigOpt = None, scheduler: SchedulerOpt = None) -> None:
    """Risk for every invoice open at as-of, with reasons, from the company's champion models."""
    from training.distributed import score

    at, policy = _as_of(as_of), _policy(data, config)
    with _steps(2) as step:
        company = _read(data, mapping, step, policy, warm=_predicting("training.scoring", _WARM_KERNELS))
        step("Scoring the open invoices: champion models, features, reasons")
        try:
            scored = score(company, at, policy=policy, company_key=policy.company_key(data), scheduler=scheduler)
        except LookupError as e:
            _champion_error(e)
        except ClusterUnavailable as e:
            _cluster_error(e)
    write_output(scored, out)
    if scored.empty:
        console.print(f"[yellow]0 open invoices scored -> {out}: {why_none_open(company, at)}.[/yellow]")
        return
    bands = ", ".join(f"{k}: {v}" for k, v in scored["risk_band"].value_counts().items())
    console.print(f"{len(scored):,} open invoices scored -> {out}  ({bands})")


@app.command("customers")
def customers_cmd(data: DataArg, out: OutOpt, as_of: AsOfOpt = None, mapping: MappingOpt = None,
                  config: ConfigOpt = None, scheduler: SchedulerOpt = None) -> None:
    """Segment, credit grade, recommended limit and early warning for every customer, from the champion models."""
    from training.distributed import customer_risk

    at, policy = _as_of(as_of), _policy(data, config)
    with _steps(2) as step:
        company = _read(data, mapping, step, policy, warm=("training.customers",))
        step("Grading the customers: segments, grades, limits, early warnings")
        try:
            rows = customer_risk(company, at, policy=policy, company_key=policy.company_key(data), scheduler=scheduler)
        except LookupError as e:
            _champion_error(e)
        except ClusterUnavailable as e:
            _cluster_error(e)
    write_output(rows, out)
    grades = rows["credit_grade"].value_counts().reindex(list(GRADES)).fillna(0).astype(int)
    console.print(f"{len(rows):,} customers -> {out}  (grades {', '.join(f'{k}: {v}' for k, v in grades.items())}; "
                  f"{int((rows['warning'] != '').sum())} warnings)")


WeeksOpt = Annotated[int, typer.Option("--weeks", min=WEEKS.low, max=WEEKS.high, help=f"{WEEKS.description}.")]


def _paths_opt(text: str) -> typer.models.OptionInfo:
    """A ``--paths`` option bounded by ``features.limits.PATHS``."""
    return typer.Option(min=PATHS.low, max=PATHS.high, help=text)


def _with_shock_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` (which takes ``**shocks``) one ``--shock-name`` option per shock of
    ``training.cash.shocks.SHOCKS``, bounded by the shock's range, after its ``--weeks``."""
    from training.cash.shocks import SHOCKS

    shocks = [inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=0.0,
                                annotation=Annotated[float, typer.Option(min=s.low, max=s.high, metavar=s.unit,
                                                                         help=f"{s.description}.")])
              for s in SHOCKS.values()]
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
           for p in inspect.signature(command, eval_str=True).parameters.values() if p.kind is not p.VAR_KEYWORD]
    at = [p.name for p in own].index("weeks") + 1
    command.__signature__ = inspect.Signature(own[:at] + shocks + own[at:], return_annotation=None)
    return command


@app.command("forecast")
@_with_shock_options
def forecast_cmd(
    data: DataArg, out: OutOpt, as_of: AsOfOpt = None, weeks: WeeksOpt = WEEKS.default,
    paths: Annotated[int, _paths_opt(f"{PATHS.description}.")] = PATHS.default,
    config: Annotated[Optional[Path], typer.Option("--config", help="A likvid.yaml policy (cash floor).")] = None,
    mapping: MappingOpt = None, scheduler: SchedulerOpt = None,
    save: Annotated[bool, typer.Option("--save", help="Also keep this forecast as a version (MLflow run) for "
                                       "`likvid variance`; prints its id last.")] = False,
    months: Annotated[Optional[int], typer.Option("--months", min=MONTHS.low, max=MONTHS.high, help="Write the "
                                                  "monthly view of this many months to --out instead of the weeks "
                                                  "(downside / base / upside month-end balances).")] = None,
    **shocks: float,
) -> None:
    """Weekly cash forecast with downside / base / upside (p10 / p50 / p90) and what-if shocks."""
    from training.cash.shocks import Shocks
    from training.distributed import on_cluster

    at = _as_of(as_of)
    shocks = Shocks(**shocks)  # in range: the options' bounds are the shocks' ranges
    policy = _policy(data, config)
    _warm(*_predicting("training.cash.forecast", "training.cash.model", _WARM_KERNELS))
    company = _load(data, mapping, policy)
    from training.cash.forecast import forecast
    from training.cash.model import load_forecast_models

    with _progress() as progress:
        progress.add_task(f"Simulating {paths:,} cash paths over {weeks} weeks", total=None)
        try:
            models = load_forecast_models(policy.company_key(data), policy)
            rows = on_cluster(scheduler, forecast, company, at, weeks, shocks, models=models, policy=policy,
                              paths=paths)
            if months is not None:
                from training.cash.monthly import monthly

                month_rows, _ = on_cluster(scheduler, monthly, company, at, months, shocks, models=models,
                                           paths=paths)
        except LookupError as e:
            _champion_error(e)
        except ClusterUnavailable as e:
            _cluster_error(e)
    write_output(rows if months is None else month_rows, out)
    table = Table(title=f"Cash forecast from {rows['week_start'].iloc[0] - pd.Timedelta(days=1):%Y-%m-%d}")
    for col in ("week", "ends", "inflow p50", "outflow p50", "balance p10", "balance p50", "balance p90"):
        table.add_column(col, justify="right")
    for r in rows.itertuples(index=False):
        table.add_row(str(r.week), f"{r.week_end:%Y-%m-%d}", f"{r.inflow_p50:,.0f}", f"{r.outflow_p50:,.0f}",
                      f"{r.balance_p10:,.0f}", f"{r.balance_p50:,.0f}", f"{r.balance_p90:,.0f}",
                      style="red" if r.below_floor else "")
    console.print(table)
    flagged = rows.loc[rows["below_floor"], "week"].tolist()
    written = f"{len(rows)} weeks -> {out}; " if months is None else ""
    console.print(written + (f"[red]p10 balance below the cash floor "
                  f"{policy.cash_floor:,.0f} in weeks {', '.join(map(str, flagged))}[/red]" if flagged
                  else f"p10 balance stays above the cash floor {policy.cash_floor:,.0f}"))
    if rows["opening_note"].iloc[0]:
        err.print(f"[yellow]{rows['opening_note'].iloc[0]}[/yellow]")
    if months is not None:
        console.print(f"{len(month_rows)} months (downside / base / upside month-end balance) -> {out}")
    if save:
        from training.cash.versions import save_version

        start = rows["week_start"].iloc[0] - pd.Timedelta(days=1)
        print(save_version(rows, policy.company_key(data), start, shocks, models.versions, paths=paths, seed=0,
                           data=str(data)))


@app.command("backtest")
def backtest_cmd(
    data: DataArg, as_of: AsOfOpt = None, weeks: WeeksOpt = WEEKS.default,
    every_weeks: Annotated[int, typer.Option(min=1, help="Weeks between origins.")] = 4,
    span_weeks: Annotated[int, typer.Option(min=0, help="Origins lie within this many weeks.")] = 52,
    origins: Annotated[Optional[int], typer.Option(min=1, help="Only the latest N origins.")] = None,
    paths: Annotated[int, _paths_opt(f"{PATHS.description} per origin.")] = 500,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write every origin's weeks here.")] = None,
    mapping: MappingOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Rolling-origin backtest of the cash forecast against four baselines, logged to MLflow, with coverage,
    bias, WAPE and pinball loss by horizon band (weeks 1, 2-4, 5-8, 9-13, and 14-26, 27-52 when asked)."""
    from features.invoices import FeatureConfig
    from training import tracking
    from training.cash.backtest import BacktestConfig, backtest, band_table
    from training.cash.family import log_backtest

    at, policy = _as_of(as_of), _policy(data, config)
    company = _load(data, mapping, policy)
    cfg = BacktestConfig(every_weeks=every_weeks, span_weeks=span_weeks, weeks=weeks, origins=origins, paths=paths,
                         features=FeatureConfig.from_policy(policy))
    with _bar() as bar:
        task = bar.add_task("Backtesting", total=None)

        def origin_done(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what)

        try:
            result = backtest(company, at, cfg, progress=origin_done)
        except ValueError as e:
            err.print(f"[red]Cannot backtest: {e}[/red]")
            raise typer.Exit(2) from None
        bar.update(task, description="Logging to MLflow")
        run_id = log_backtest(result, str(data), cfg)
    table = Table(title=f"{len(result.origins)} origins, {result.origins[0]:%Y-%m-%d} to "
                  f"{result.origins[-1]:%Y-%m-%d}, {weeks} weeks each")
    overall = result.summary[~result.summary["metric"].str.contains("_w", regex=False)]
    wide = overall.pivot_table(index=["metric", "method"], columns="target", values="value", sort=False)
    table.add_column("figure")
    for col in wide.columns:
        table.add_column(col, justify="right")
    for (metric, method), row in wide.iterrows():
        table.add_row(f"{metric} {method}", *["—" if pd.isna(v) else f"{v:.3f}" for v in row])
    console.print(table)
    console.print("By horizon band: likvid's p10-p90 coverage (target 0.80) and the 8-week mean's, bias (mean of "
                  "(actual - p50) / actual; not for net, whose weeks can be near zero), WAPE and pinball loss "
                  "(p10/p50/p90, as a share of the mean actual); × naive: against the better of the 8-week mean "
                  "and the same weeks a year earlier")
    for target in ("receipts", "payments", "net"):
        bands = Table(title=f"{target} by horizon band")
        for col in ("weeks", "n", "p10-p90", "mean8", "bias", "WAPE", "× naive", "pinball", "× naive"):
            bands.add_column(col, justify="left" if col == "weeks" else "right")
        for r in band_table(result.by_band, target).itertuples(index=False):
            cells = [r.coverage, r.coverage_mean8, None if target == "net" else r.bias, r.wape, r.wape_vs_naive,
                     r.pinball, r.pinball_vs_naive]
            bands.add_row(r.band, str(r.n), *["—" if v is None or pd.isna(v) else f"{v:.3f}" for v in cells])
        console.print(bands)
    first = band_table(result.by_band, "receipts").iloc[0]
    console.print(f"Week 1 receipts: inside likvid's p10-p90 at {round(first.coverage * first.n)} of {first.n} "
                  f"origins ({first.coverage:.0%}); bias {first.bias:+.1%} (mean of (actual - p50) / actual)")
    if out is not None:
        write_output(result.weekly, out)
        console.print(f"Every origin's weeks -> {out}")
    console.print(f"MLflow run {run_id} at {tracking.shown_uri()} (fan chart, error by horizon)")


@app.command("kpis")
def kpis_cmd(data: DataArg, out: OutOpt, as_of: AsOfOpt = None, config: ConfigOpt = None,
             mapping: MappingOpt = None) -> None:
    """Working-capital figures at as-of: DSO, DPO, DIO, CCC, aging, overdue and bad-debt shares, stock, alerts."""
    from features.working_capital import kpis

    at, policy = _as_of(as_of), _policy(data, config)
    with _steps(2) as step:
        company = _read(data, mapping, step, policy)
        step("Computing the working-capital figures")
        figures = kpis(company, at, policy)
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


OwnerOpt = Annotated[Optional[str], typer.Option("--owner", metavar="NAME", help="Only the customers of this "
                                                 "owner (the customers' owner column; case does not matter).")]
ByCustomerOpt = Annotated[bool, typer.Option("--by-customer", help="One row per call: each customer to contact, "
                                             "with its invoices listed, their totals and one draft (--top: calls).")]


@app.command("worklist")
def worklist_cmd(data: DataArg, out: OutOpt, as_of: AsOfOpt = None, top: TopOpt = None, config: ConfigOpt = None,
                 mapping: MappingOpt = None, owner: OwnerOpt = None, by_customer: ByCustomerOpt = False) -> None:
    """The open invoices to act on first, with the dunning step and why, from the champion models."""
    at, policy = _as_of(as_of), _policy(data, config)
    with _steps(2) as step:
        company = _read(data, mapping, step, policy, warm=_predicting("training.collections", _WARM_KERNELS))
        from training.collections import NO_ACTION, worklist

        step("Ranking the open invoices by the cash that acting brings in")
        try:
            rows = worklist(company, at, top, policy, company_key=policy.company_key(data), owner=owner,
                            by_customer=by_customer)
        except LookupError as e:
            _champion_error(e)
        except ValueError as e:  # an owner nobody has, or no owners at all
            err.print(f"[red]{e}[/red]")
            raise typer.Exit(2) from None
    write_output(rows, out)
    if rows.empty:
        what, why = ("calls", "no customer to contact") if by_customer else ("open invoices ranked",
                                                                           why_none_open(company, at))
        console.print(f"[yellow]0 {what} -> {out}: {why}.[/yellow]")
        return
    if by_customer:
        counts = ", ".join(f"{k}: {v}" for k, v in rows["action"].value_counts().items())
        console.print(f"{len(rows):,} calls covering {rows['n_invoices'].sum():,} invoices -> {out}  ({counts}); "
                      f"expected cash from acting: {rows['expected_gain'].sum():,.0f}")
        return
    acted = rows[rows["action"] != NO_ACTION]
    counts = ", ".join(f"{k}: {v}" for k, v in acted["action"].value_counts().items())
    console.print(f"{len(rows):,} open invoices ranked -> {out}  ({counts or 'no action due'}); expected cash "
                  f"from acting: {acted['expected_gain'].sum():,.0f}")


def _why_no_terms(company: Company, at: Optional[pd.Timestamp]) -> str:
    from features.contract import Bill

    bills = company.get(Bill.TABLE)
    if bills.empty:
        return "the data holds no bills"
    if not (bills[Bill.DISCOUNT_PCT].fillna(0) > 0).any():
        return f"no bill carries early-payment terms ({Bill.DISCOUNT_PCT} is empty or 0 throughout)"
    return f"no bill with early-payment terms is open: {why_none_open(company, at, Bill.TABLE)}"


@app.command("discounts")
def discounts_cmd(data: DataArg, out: OutOpt, as_of: AsOfOpt = None, config: ConfigOpt = None,
                  mapping: MappingOpt = None) -> None:
    """For each open bill with early-payment terms: take the discount or not, and what it earns."""
    from training.collections import discounts

    at, policy = _as_of(as_of), _policy(data, config)
    with _steps(2) as step:
        company = _read(data, mapping, step, policy)
        step("Forecasting cash and deciding the discounts")
        try:
            rows = discounts(company, at, policy, company_key=policy.company_key(data))
        except LookupError as e:
            _champion_error(e)
        except ValueError as e:
            err.print(f"[red]Cannot decide discounts: {e}[/red]")
            raise typer.Exit(2) from None
    write_output(rows, out)
    if rows.empty:
        console.print(f"[yellow]0 open bills with early-payment terms -> {out}: {_why_no_terms(company, at)}."
                      "[/yellow]")
        return
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


def _start_service(data: Optional[Path], at: Optional[pd.Timestamp], config: Optional[Path], host: str, port: int,
                   serve: bool = True, mapping: Optional[Path] = None) -> None:
    """Check that the service can start (models, data, policy), then serve it until stopped."""
    import os

    from serving import service
    from serving import state as startup
    from training import tracking

    os.environ.update(startup.serve_environment(data, at, config, mapping))
    with _progress() as progress:
        progress.add_task("Loading the champion models and the served history", total=None)
        try:
            state = startup.load_state(startup.Settings.from_env())
        except startup.StartupError as e:
            err.print(f"[bold red]The service cannot start:[/bold red] {e}")
            raise typer.Exit(1) from None
    versions = ", ".join(f"{c.name} v{c.version}" for c in state.models.cards)
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
                  f"{tracking.shown_uri(os.environ['MLFLOW_TRACKING_URI'])}  (then http://127.0.0.1:5000)")
    if serve:
        console.print("Ctrl+C stops the server.")
        service.serve(host, port)


WorkersOpt = Annotated[Optional[int], typer.Option("--workers", min=1, envvar="LIKVID_WORKERS", help="Server "
                       "worker processes (default: one per core).")]
HeavyWorkersOpt = Annotated[Optional[int], typer.Option("--heavy-workers", min=1, envvar="LIKVID_HEAVY_WORKERS",
                            help="Processes for the heavy answers (forecasts, worklists, KPIs, big score "
                            "batches), apart from the workers that take requests (default: 1).")]
MaxConnectionsOpt = Annotated[Optional[int], typer.Option("--max-connections", min=1, envvar="LIKVID_MAX_CONNECTIONS",
                              help="Open connections per API worker; a request beyond them gets a 503 (default: "
                              f"{MAX_CONNECTIONS}). Request headers must arrive within {HEADER_SECONDS:g} s, or "
                              "the connection gets a 408.")]
ReloadOpt = Annotated[Optional[float], typer.Option("--reload-on-promote", min=1, envvar="LIKVID_RELOAD_ON_PROMOTE",
                      help="Check the registry every this many seconds and serve a newly promoted champion "
                      "without stopping (default: never; restart to pick one up).")]


@app.command("serve")
def serve_cmd(data: ServeDataOpt = None, as_of: ServeAsOfOpt = None, port: PortOpt = 3000,
              host: HostOpt = "127.0.0.1", config: ConfigOpt = None, mapping: MappingOpt = None,
              workers: WorkersOpt = None, heavy_workers: HeavyWorkersOpt = None,
              reload_on_promote: ReloadOpt = None, max_connections: MaxConnectionsOpt = None) -> None:
    """The HTTP API (BentoML) over the champion models and the company's history."""
    from serving import state as startup

    at = _as_of(as_of)
    _policy(data, config)  # a bad likvid.yaml exits 2 here; the service's workers read the same file
    # The service's workers read these when they start (serving.state).
    os.environ[startup.ENV_WORKERS] = str(workers) if workers else ""
    os.environ[startup.ENV_HEAVY_WORKERS] = str(heavy_workers) if heavy_workers else ""
    os.environ[startup.ENV_RELOAD] = f"{reload_on_promote:g}" if reload_on_promote else ""
    os.environ[startup.ENV_MAX_CONNECTIONS] = str(max_connections) if max_connections else ""
    _start_service(data, at, config, host, port, mapping=mapping)


@app.command("build")
def build_cmd() -> None:
    """Import the champion models into BentoML's model store and build a deployable bento (bentofile.yaml)."""
    from serving import bento as bentos

    with _progress() as progress:
        task = progress.add_task("Importing the champion models into BentoML's model store", total=None)
        try:
            imported = bentos.import_champions()
        except LookupError as e:
            _champion_error(e)
        progress.update(task, description="Building the bento from bentofile.yaml")
        bento = bentos.build_bento()
    for tag in imported:
        console.print(f"model {tag}")
    console.print(f"[green]Bento {bento.tag} built[/green] at {bento.path}\n"
                  f"Serve it: LIKVID_MODEL_SOURCE=bento LIKVID_DATA=DATA .venv/bin/bentoml serve {bento.tag}\n"
                  f"Containerise it (needs Docker): .venv/bin/bentoml containerize {bento.tag}")


DEMO = SyntheticConfig(customers=300, years=3.0, seed=7)  # the demo company: `make demo` and the notebooks
DEMO_FOLDER = Path("demo")  # in the working folder; its data is DEMO_FOLDER / "company"
REPO = Path(__file__).resolve().parents[1]


def demo_company(root: Path = REPO) -> Path:
    """The demo company's data folder under ``root`` (default: the repository), generated when missing:
    the notebooks' default data, the same company `make demo` writes."""
    data = root / DEMO_FOLDER / "company"
    if not (data / "invoices.csv").exists():
        write(generate(DEMO), data)
    return data


@app.command("demo")
def demo_cmd(
    workdir: Annotated[Path, typer.Option(help="Folder for the demo company and its outputs.")] = DEMO_FOLDER,
    customers: Annotated[int, typer.Option(min=1)] = DEMO.customers,
    years: Annotated[float, typer.Option(min=0.5)] = DEMO.years,
    seed: Annotated[int, typer.Option()] = DEMO.seed,
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


CustomerIdOpt = Annotated[str, typer.Option("--customer", help="The customer's id (as in customers.customer_id).")]
AmountOpt = Annotated[float, typer.Option("--amount", min=0.01, help="The new order's or credit's amount, in the base "
                                          "currency.")]
OptionalOutOpt = Annotated[Optional[Path], typer.Option("--out", help="Also write the row to this file (.csv or "
                                                        ".parquet).")]


@app.command("credit-check")
def credit_check_cmd(data: DataArg, customer: CustomerIdOpt, amount: AmountOpt, as_of: AsOfOpt = None,
                     out: OptionalOutOpt = None, config: ConfigOpt = None, mapping: MappingOpt = None) -> None:
    """Approve, refer (to whom, by approval_tiers) or block a new order or credit, with the reasons."""
    from features.asof import last_known_date
    from training.customers import customer_risk
    from training.decisions.credit_check import CREDIT_CHECK_COLUMNS, credit_check

    at, policy = _as_of(as_of), _policy(data, config)
    with _steps(2) as step:
        company = _read(data, mapping, step, policy)
        step("Grading the customer and checking the amount against its headroom")
        at = at if at is not None else last_known_date(company)
        try:
            customers = customer_risk(company, at, policy=policy, company_key=policy.company_key(data))
        except LookupError as e:
            _champion_error(e)
        try:
            row = credit_check(company, customer, amount, at, customers, policy)
        except ValueError as e:
            err.print(f"[red]--customer: {e}[/red]")
            raise typer.Exit(2) from None
    if out is not None:
        write_output(row, out)
    print(row[CREDIT_CHECK_COLUMNS].to_csv(index=False), end="")


VersionOpt = Annotated[Optional[str], typer.Option("--version", help="A saved forecast's id (from `likvid forecast "
                                                   "--save` or --list; a unique prefix will do; default: the "
                                                   "latest with a passed week).")]
AgainstOpt = Annotated[Optional[str], typer.Option("--against", help="A later saved forecast: write the bridge "
                                                   "between the two (how much each cause moved the balance).")]


@app.command("variance")
def variance_cmd(data: DataArg, out: OutOpt, version: VersionOpt = None, against: AgainstOpt = None,
                 as_of: AsOfOpt = None, list_: Annotated[bool, typer.Option("--list", help="Write the saved versions "
                                                                            "instead.")] = False,
                 config: ConfigOpt = None, mapping: MappingOpt = None) -> None:
    """A saved forecast against what happened (plus accuracy by horizon over all saved versions and a plot), or
    the bridge between two saved forecasts, or (--list) the saved versions."""
    from features.asof import last_known_date
    from training.cash import variance as var
    from training.cash.versions import list_versions, load_version

    policy = _policy(data, config)
    key = policy.company_key(data)
    saved = list_versions(key)
    if list_:
        write_output(saved, out)
        console.print(f"{len(saved)} saved forecasts of company {key} -> {out}")
        return
    company = _load(data, mapping, policy)
    at = _as_of(as_of) or last_known_date(company)
    if version is None:
        passed = saved[pd.to_datetime(saved["as_of"]) + pd.Timedelta(days=7) <= at]
        if passed.empty:
            err.print(f"[red]--version: company {key} has no saved forecast with a week passed by {at:%Y-%m-%d}; "
                      "save one with `likvid forecast DATA --save`[/red]")
            raise typer.Exit(2)
        version = passed["version"].iloc[-1]
    try:
        first = load_version(key, version)
        later = load_version(key, against) if against is not None else None
    except (LookupError, ValueError) as e:
        err.print(f"[red]{'--against' if against and str(against) in str(e) else '--version'}: {e}[/red]")
        raise typer.Exit(2) from None
    if later is not None:
        from training.cash.bridge import bridge, waterfall_plot
        from training.cash.versions import load_models

        try:
            rows = bridge(company, first, later, load_models(key, first.models), load_models(key, later.models))
        except (LookupError, ValueError) as e:
            err.print(f"[red]--against: {e}[/red]")
            raise typer.Exit(2) from None
        write_output(rows, out)
        plot = out.with_suffix(".png")
        start = first.table.set_index("week_end")["balance_p50"].get(rows["week_end"].max(), 0.0)
        waterfall_plot(rows, float(start), str(plot))
        last = rows[rows["week_end"] == rows["week_end"].max()]
        for r in last.itertuples(index=False):
            console.print(f"{r.cause:>32}  {r.amount:>14,.0f}")
        console.print(f"bridge over {rows['week_end'].nunique()} weeks -> {out}; waterfall -> {plot}")
        return
    rows = var.variance(company, first, at)
    write_output(rows, out)
    history = var.accuracy(company, [load_version(key, v) for v in saved["version"]], at)
    accuracy_out = out.with_name(out.stem + "_accuracy" + out.suffix)
    write_output(history, accuracy_out)
    plot = out.with_suffix(".png")
    if len(rows):
        var.variance_plot(rows, str(plot), f"Forecast of {first.as_of:%Y-%m-%d} against actual")
    inside = int(rows["inflow_inside"].sum()) if len(rows) else 0
    console.print(f"{len(rows)} passed weeks of {first.version[:8]} (as of {first.as_of:%Y-%m-%d}) -> {out}; receipts "
                  f"inside the p10-p90 band in {inside}; accuracy by horizon -> {accuracy_out}"
                  + (f"; plot -> {plot}" if len(rows) else ""))


@app.command("provision")
def provision_cmd(data: DataArg, out: OutOpt, as_of: AsOfOpt = None, config: ConfigOpt = None,
                  mapping: MappingOpt = None) -> None:
    """Expected credit loss on open receivables: the loss-rate matrix by aging bucket and the model's, side by side."""
    from features.asof import last_known_date
    from training.decisions.provision import MATRIX, MODEL, TOTAL, provision

    at, policy = _as_of(as_of), _policy(data, config)
    with _steps(2) as step:
        company = _read(data, mapping, step, policy)
        step("Learning loss rates from the history and weighing the open invoices")
        at = at if at is not None else last_known_date(company)
        try:
            rows = provision(company, at, policy, company_key=policy.company_key(data))
        except LookupError as e:
            _champion_error(e)
    write_output(rows, out)
    total = rows[rows["level"] == TOTAL].set_index("method")
    console.print(f"Provision on {total.at[MATRIX, 'amount_open']:,.0f} open -> {out}  (loss-rate matrix: "
                  f"{total.at[MATRIX, 'provision']:,.0f}; model: {total.at[MODEL, 'provision']:,.0f})")


@app.command("collections-report")
def collections_report_cmd(
    data: DataArg, as_of: AsOfOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Also write every row, with its interval and "
                                                "definition, to this file (.csv or .parquet).")] = None,
    config: ConfigOpt = None, mapping: MappingOpt = None,
) -> None:
    """Does chasing help? Chased against control invoices (paid within 30 days, days to pay, cash collected, with
    95 % intervals) from the collections log and the payments, and the collection KPIs, by owner when there is one."""
    from training.decisions.effect import DIFFERENCE, collections_report

    at, policy = _as_of(as_of), _policy(data, config)
    with _steps(2) as step:
        company = _read(data, mapping, step, policy)
        step("Comparing the chased and the control invoices")
        try:
            rows = collections_report(company, at, policy)
        except ValueError as e:
            err.print(f"[red]{e}[/red]")
            raise typer.Exit(2) from None
    if out is not None:
        write_output(rows, out)

    def shown(value: float, unit_: str) -> str:
        return "—" if pd.isna(value) else f"{value:.1%}" if unit_ == "share" else f"{value:,.1f}"

    effect = rows[rows["section"] == "effect"].pivot_table(index="metric", columns="arm", values=["value", "low",
                                                                                                   "high", "n"],
                                                            sort=False, dropna=False)
    table = Table(title="The effect of chasing (chased − control, 95 % normal-approximation interval)")
    for col in ("outcome", "chased", "control", "difference", "interval"):
        table.add_column(col, justify="left" if col == "outcome" else "right")
    units = rows.drop_duplicates("metric").set_index("metric")["unit"]
    for metric, r in effect.iterrows():
        u = units[metric]
        table.add_row(metric, shown(r[("value", "chased")], u), shown(r[("value", "control")], u),
                      shown(r[("value", DIFFERENCE)], u),
                      f"{shown(r[('low', DIFFERENCE)], u)} to {shown(r[('high', DIFFERENCE)], u)}")
    console.print(table)
    counts = effect.iloc[0]
    console.print(f"{int(counts[('n', 'chased')]):,} chased and {int(counts[('n', 'control')]):,} control invoices "
                  f"compared (dunning.control_share {policy.dunning.control_share:.0%})")
    kpis = Table(title="Collection KPIs")
    for col in ("owner", "figure", "value", "unit"):
        kpis.add_column(col, justify="right" if col == "value" else "left")
    for r in rows[rows["section"] == "kpi"].itertuples(index=False):
        kpis.add_row(r.owner or "all", r.metric, shown(r.value, r.unit), r.unit)
    console.print(kpis)
    if out is not None:
        console.print(f"{len(rows)} rows with their intervals and definitions -> {out}")


SHOWN_OPTIONS = 15  # options printed; the file has them all


@app.command("liquidity")
@_with_shock_options
def liquidity_cmd(
    data: DataArg, out: OutOpt, as_of: AsOfOpt = None, weeks: WeeksOpt = WEEKS.default,
    paths: Annotated[int, _paths_opt(f"{PATHS.description}.")] = PATHS.default,
    config: ConfigOpt = None, mapping: MappingOpt = None, **shocks: float,
) -> None:
    """Surplus and gaps, week by week: cash above floor plus buffer to place, and what closes a gap below the floor
    (credit line, factoring, skipping discounts, delaying bills), cheapest first. Writes the weeks to --out and the
    options beside it (NAME_options)."""
    from training import tracking
    from training.cash.liquidity import plan_liquidity, summary
    from training.cash.model import load_forecast_models
    from training.cash.shocks import Shocks

    at, policy = _as_of(as_of), _policy(data, config)
    shocks = Shocks(**shocks)  # in range: the options' bounds are the shocks' ranges
    company = _load(data, mapping, policy)
    with _progress() as progress:
        progress.add_task(f"Simulating {paths:,} cash paths over {weeks} weeks and weighing the options", total=None)
        try:
            key = policy.company_key(data)
            models = load_forecast_models(key, policy)
            late = tracking.load_champion(tracking.LATE_PAYMENT, key, policy).model
            _, plan = plan_liquidity(company, at, weeks, shocks, models=models, late=late, policy=policy,
                                     paths=paths)
        except LookupError as e:
            _champion_error(e)
    write_output(plan.weeks, out)
    options_out = out.with_name(out.stem + "_options" + out.suffix)
    write_output(plan.options, options_out)
    w = plan.weeks
    table = Table(title=f"Surplus and gaps from {w['week_start'].iloc[0] - pd.Timedelta(days=1):%Y-%m-%d} (floor "
                  f"{policy.cash_floor:,.0f}, buffer {w['buffer'].iloc[0]:,.0f})")
    # Without a bank balance the headroom is withheld; the opening balance each week needs is what can be said.
    for col in ("week", "ends", "balance p10", "headroom" if plan.opening_known else "opening needed", "placeable",
                "for weeks", "gap"):
        table.add_column(col, justify="right")

    def money(v: float) -> str:
        return "—" if pd.isna(v) else f"{v:,.0f}"

    for r in w.itertuples(index=False):
        table.add_row(str(r.week), f"{r.week_end:%Y-%m-%d}", money(r.balance_p10),
                      money(r.headroom if plan.opening_known else r.opening_needed),
                      money(r.surplus_placeable), money(r.placeable_weeks), money(r.gap),
                      style="red" if r.status == "gap" else "green" if r.surplus_placeable > 0 else "")
    console.print(table)
    if len(plan.options):
        ranked = Table(title="What closes the gap, cheapest per unit of gap and week first")
        for col in ("rank", "option", "item", "amount", "arrives", "until", "cost", "gap left"):
            ranked.add_column(col, justify="left" if col in ("option", "item") else "right")
        for r in plan.options.head(SHOWN_OPTIONS).itertuples(index=False):
            ranked.add_row(str(r.rank), r.option, r.item, money(r.amount), f"week {r.arrives_week}",
                           f"week {r.until_week}", money(r.cost), money(r.gap_left))
        console.print(ranked)
        if len(plan.options) > SHOWN_OPTIONS:
            console.print(f"[dim](the first {SHOWN_OPTIONS} of {len(plan.options)}; all in {options_out})[/dim]")
    for note in plan.notes:  # why an option offers nothing; without a bank balance, why gaps are withheld
        (console if plan.opening_known else err).print(f"[{'dim' if plan.opening_known else 'yellow'}]{note}[/]")
    console.print(f"{len(w)} weeks -> {out}; {len(plan.options)} options -> {options_out}")
    console.print(summary(plan, policy))


def run() -> None:
    """The ``likvid`` command (its console script): ``app``, in a process of its own."""
    global _OWN_PROCESS
    _OWN_PROCESS = True
    app()


if __name__ == "__main__":
    run()
