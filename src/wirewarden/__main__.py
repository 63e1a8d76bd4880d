"""The `wirewarden` command and `python -m wirewarden`: the CLI, imported only when run.

The console script imports this module at its top. A process that `serve` spawns through
multiprocessing (the DNS query-log writer) runs the script again as its main module: had
the script imported the CLI, each such child would load all of it (~50 MB) for nothing.
"""

from __future__ import annotations


def main() -> None:
    import gc
    import sys
    from collections.abc import Callable

    # Importing the CLI makes some hundred thousand objects that live as long as the
    # process: collecting while they are made, and again at exit, cost a fifth of every
    # command's time (`wirewarden interface list`: 1.0 s -> 0.7 s). They are set aside
    # (frozen) from later collections; what the command itself makes is collected as usual.
    gc.disable()
    command: Callable[[], None]
    if sys.argv[1:2] == ["expose"]:
        # On a peer: none of the server's modules (the database, the drivers) is needed, and
        # loading them would cost most of a second before the first mapping is published.
        from wirewarden.cli.expose import standalone as command
    else:
        from wirewarden.cli.main import main as command
    gc.freeze()
    gc.enable()
    command()


if __name__ == "__main__":
    main()
