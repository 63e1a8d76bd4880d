"""Sign-in cost: Argon2id hashing and the whole POST /api/v1/auth/login, in-process.

Prints, for the product's Argon2id parameters (64 MiB, t=3, p=2):
- hash and verify time (p50/p95) of `Passwords` alone;
- the login API call (ASGI, real SQLite file, in-memory data plane) for a right password,
  a wrong password and an unknown name, p50/p95; the unknown/wrong ratio shows whether a
  stranger can tell names that exist from their timing (1.0 = no);
- as a same-run reference, verify time at OWASP's minimum Argon2id (19 MiB, t=2, p=1).

No namespace, no network: everything runs in this process against a temp directory.
Run: .venv/bin/python bench/login_argon2.py [--rounds 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from wirewarden.bootstrap import build
from wirewarden.config import Settings
from wirewarden.dataplane.fake import FakeDataplane
from wirewarden.services.account_schemas import UserCreate
from wirewarden.services.context import SYSTEM
from wirewarden.services.passwords import HashParams, Passwords
from wirewarden.web.app import create_app

PASSWORD = "a long enough passphrase"  # noqa: S105 (a throwaway user in a temp dir)


def timed(fn: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered), 1), "p95_ms": round(p95, 1)}


def hashing(rounds: int) -> dict[str, object]:
    product = Passwords()
    stored = product.hash(PASSWORD)
    owasp = Passwords(params=HashParams(time_cost=2, memory_cost=19 * 1024, parallelism=1))
    owasp_stored = owasp.hash(PASSWORD)
    return {
        "params": stored.split("$")[3],
        "hash": summary(timed(lambda: product.hash(PASSWORD), rounds)),
        "verify": summary(timed(lambda: product.verify(stored, PASSWORD), rounds)),
        "verify_owasp_minimum": summary(
            timed(lambda: owasp.verify(owasp_stored, PASSWORD), rounds)
        ),
    }


def api(rounds: int, data_dir: Path) -> dict[str, object]:
    # Lockouts would turn the wrong-password rounds into 429s: lift them for the measurement.
    os.environ["WIREWARDEN_LOGIN_MAX_FAILURES"] = str(10 * rounds)
    os.environ["WIREWARDEN_LOGIN_MAX_FAILURES_PER_SOURCE"] = str(10 * rounds)
    container = build(Settings(data_dir=data_dir), dataplane=FakeDataplane())
    container.users.create(UserCreate(name="alice", password=PASSWORD), SYSTEM)
    client = TestClient(create_app(container, run_loop=False))

    def login(name: str, password: str, status: int) -> Callable[[], None]:
        def call() -> None:
            response = client.post("/api/v1/auth/login", json={"name": name, "password": password})
            assert response.status_code == status, response.text

        return call

    timed(login("alice", PASSWORD, 200), 3)  # warm up
    right = summary(timed(login("alice", PASSWORD, 200), rounds))
    wrong = summary(timed(login("alice", "not the password", 401), rounds))
    unknown = summary(timed(login("nobody", "not the password", 401), rounds))
    container.engine.dispose()
    return {
        "right_password": right,
        "wrong_password": wrong,
        "unknown_user": unknown,
        "unknown_over_wrong_p50": round(unknown["p50_ms"] / wrong["p50_ms"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        figures = {
            "load_average_start": round(load, 2),
            "cores": os.cpu_count(),
            "hashing": hashing(args.rounds),
            "login_api": api(args.rounds, Path(tmp) / "data"),
            "load_average_end": round(os.getloadavg()[0], 2),
        }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
