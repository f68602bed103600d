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

from features.load import ContractError, Validation, validate
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


@app.command("demo")
def demo_cmd(
    workdir: Annotated[Path, typer.Option(help="Folder for the demo company and its outputs.")] = Path("demo"),
    customers: Annotated[int, typer.Option(min=1)] = 300,
    years: Annotated[float, typer.Option(min=0.5)] = 3.0,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """The main job: make a synthetic company and validate it (training and serving follow as they land)."""
    data = workdir / "company"
    console.rule("[bold]likvid demo[/bold]")
    console.print("1/2 Generating a synthetic company")
    generate_cmd(data, customers=customers, years=years, seed=seed)
    console.print("2/2 Validating it against the data contract")
    validate_cmd(data, rejects=workdir / "rejects.csv")
    console.rule("[bold green]done[/bold green]")
    console.print(f"The company is in {data}. Try: likvid validate {data}")


if __name__ == "__main__":
    app()
