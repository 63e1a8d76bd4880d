"""The `wirewarden` command and `python -m wirewarden`: the CLI, imported only when run.

The console script imports this module at its top. A process that `serve` spawns through
multiprocessing (the DNS query-log writer) runs the script again as its main module: had
the script imported the CLI, each such child would load all of it (~50 MB) for nothing.
"""

from __future__ import annotations


def main() -> None:
    from wirewarden.cli.main import main as cli

    cli()


if __name__ == "__main__":
    main()
