"""`wirewarden db`: the database itself (copy to PostgreSQL)."""

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from wirewarden.bootstrap import copy_database_to
from wirewarden.cli import main as cli
from wirewarden.cli.output import console, errors
from wirewarden.config import StartupError
from wirewarden.store.copy import CopyError
from wirewarden.store.datalock import DataDirBusy, DataDirLock

db_app = typer.Typer(help="The database: copy it to PostgreSQL.", no_args_is_help=True)


@db_app.command("copy")
def copy(
    to: Annotated[
        str, typer.Option("--to", help="target URL, e.g. postgresql+psycopg://user@host/db")
    ],
) -> None:
    """Copy every table of this install's database (WIREWARDEN_DATABASE_URL, by default the
    SQLite file) into an empty database: ids, timestamps and sealed secrets as they are,
    sequences set past the copied ids, row counts checked. Stop serve first; afterwards
    point WIREWARDEN_DATABASE_URL at the target (the master key stays the same)."""
    settings = cli.settings()
    # A still source: serve holds this lock while it runs (and writes every 10 s).
    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire()
    except DataDirBusy as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    try:
        with Progress(
            TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(),
            console=console,
        ) as bar:  # fmt: skip
            tasks: dict[str, TaskID] = {}

            def progress(table: str, done: int, total: int) -> None:
                if table not in tasks:
                    tasks[table] = bar.add_task(table, total=max(total, 1))
                bar.update(tasks[table], completed=done if total else 1)

            report = copy_database_to(settings, to, progress)
    except (CopyError, StartupError) as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        lock.release()
    console.print(
        f"copied {report.total} rows in {len(report.rows)} tables; row counts match. "
        "Point WIREWARDEN_DATABASE_URL at the target and keep the same master key."
    )
