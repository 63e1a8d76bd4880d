"""Build step: the dashboard's front-end libraries go into the wheel.

Everything else about the package is in pyproject.toml. The libraries (htmx, uPlot,
jsvectormap) come from the npm registry pinned by package-lock.json; a wheel carries them in
wirewarden/web/static/vendor/ so that an installed `wirewarden` needs no checkout, no
node_modules and never a CDN. An editable (dev) install skips the copy: the app finds the
checkout's node_modules itself.
"""

from __future__ import annotations

import hashlib
import runpy
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
NODE_MODULES = ROOT / "node_modules"
# The same stamp scripts/setup.sh writes: the hash of the lock `npm ci` last installed.
STAMP = NODE_MODULES / ".wirewarden-lock"
TARGET = Path("wirewarden", "web", "static", "vendor")


def vendor_files() -> dict[str, str]:
    # Read as a plain file: the package's own imports are not installed in a build env.
    namespace = runpy.run_path(str(ROOT / "src" / "wirewarden" / "web" / "vendor.py"))
    files: dict[str, str] = namespace["VENDOR"]
    return files


def ensure_node_modules(files: dict[str, str]) -> None:
    """`npm ci` unless node_modules already holds what package-lock.json pins."""
    lock_hash = hashlib.sha256((ROOT / "package-lock.json").read_bytes()).hexdigest()
    current = STAMP.is_file() and STAMP.read_text().strip() == lock_hash
    if current and all((NODE_MODULES / rel).is_file() for rel in files.values()):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(
            "wirewarden build: the dashboard's libraries come from npm (package-lock.json); "
            "install nodejs and npm (scripts/setup.sh does) and build again"
        )
    argv = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    subprocess.run(argv, cwd=ROOT, check=True)
    STAMP.write_text(lock_hash + "\n")


class BuildPyWithVendor(build_py):
    """build_py, then the vendored libraries into the build tree."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        files = vendor_files()
        ensure_node_modules(files)
        target = Path(self.build_lib) / TARGET
        target.mkdir(parents=True, exist_ok=True)
        for name, relative in files.items():
            shutil.copyfile(NODE_MODULES / relative, target / name)


setup(cmdclass={"build_py": BuildPyWithVendor})
