"""The wheel is the product: built from the checkout, installed into a fresh venv far from
it, it runs, and carries the templates and the dashboard's libraries (no node_modules, no
CDN at run time)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from wirewarden.web.vendor import VENDOR

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "wirewarden"

pytestmark = pytest.mark.skipif(
    shutil.which("npm") is None and not (ROOT / "node_modules").is_dir(),
    reason="building the wheel needs npm (the dashboard's libraries come from package-lock.json)",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    argv = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)]
    subprocess.run(argv, check=True, timeout=600)
    (built,) = out.glob("wirewarden-*.whl")
    return built


def test_wheel_carries_templates_vendor_assets_and_spdx_license(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name, relative in VENDOR.items():
            packaged = archive.read(f"wirewarden/web/static/vendor/{name}")
            assert packaged == (ROOT / "node_modules" / relative).read_bytes(), name
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        assert "License-Expression: AGPL-3.0-or-later" in archive.read(metadata).decode()
    templates = {
        f"wirewarden/{p.relative_to(PACKAGE).as_posix()}"
        for p in (PACKAGE / "web" / "templates").rglob("*.html")
    }
    assert templates and templates <= names
    assert "wirewarden/web/static/app.js" in names
    assert "wirewarden/store/migrations/env.py" in names


def test_installed_wheel_runs_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # With its dependencies: a Requires-Dist missing from pyproject.toml fails here.
    subprocess.run([python, "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=900)
    clean_env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [env_dir / "bin" / "wirewarden", "--help"],
        cwd=tmp_path,
        env=clean_env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "serve" in result.stdout and "service" in result.stdout
    # The app finds the libraries inside the installed package, not in this checkout.
    probe = "from wirewarden.web.ui import assets; print(*assets.find_vendor(None).values())"
    found = subprocess.run(
        [python, "-c", probe], cwd=tmp_path, env=clean_env, capture_output=True, text=True
    )
    paths = [Path(p) for p in found.stdout.split()]
    assert len(paths) == len(VENDOR), found.stderr
    assert all(p.is_relative_to(env_dir) for p in paths), paths
