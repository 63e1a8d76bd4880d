"""How long a plain CLI command takes: `wirewarden interface list` on an empty SQLite data
dir, wall and CPU, a number of runs; with `--against DIR` (another checkout's `src`, for
example a `git worktree` of main) the same command of that tree in alternating runs, so
both see the same load, and the ratio.

The data dir is made (and migrated) by one untimed run of each tree first, and Python's
bytecode cache is left on (as on a user's machine): a shell with PYTHONDONTWRITEBYTECODE
set would time the compiler instead of the command. No root, no namespace, no network.
Run: .venv/bin/python bench/cli_start.py [--runs 7] [--against /tmp/base/src]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMAND = ["interface", "list"]


def once(env: dict[str, str]) -> tuple[float, float]:
    """Wall and user+system CPU seconds of one run of the command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).with_name("wirewarden")), *COMMAND],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def environment(data_dir: str, src: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.pop("WIREWARDEN_DATABASE_URL", None)
    env["WIREWARDEN_DATA_DIR"] = data_dir
    if src is not None:
        env["PYTHONPATH"] = src
    return env


def line(name: str, samples: list[tuple[float, float]]) -> str:
    walls = [w for w, _ in samples]
    cpus = [c for _, c in samples]
    return (
        f"{name:>10}: wall median {statistics.median(walls):.2f} s "
        f"(min {min(walls):.2f}, max {max(walls):.2f}); "
        f"CPU median {statistics.median(cpus):.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--against", help="another tree's src directory, run alternately")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    trees: dict[str, str | None] = {"this tree": None}
    if args.against:
        trees["against"] = args.against
    with tempfile.TemporaryDirectory(prefix="ww-cli-") as tmp:
        envs = {name: environment(f"{tmp}/{i}", src) for i, (name, src) in enumerate(trees.items())}
        for env in envs.values():
            once(env)  # makes the data dir and the bytecode cache
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in envs}
        for _ in range(args.runs):
            for name, env in envs.items():
                samples[name].append(once(env))
    for name, got in samples.items():
        print(line(name, got))
    if args.against:
        ratio = statistics.median(w for w, _ in samples["this tree"]) / statistics.median(
            w for w, _ in samples["against"]
        )
        print(f"wall ratio this/against: {ratio:.2f}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
