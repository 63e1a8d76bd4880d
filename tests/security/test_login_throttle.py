"""Defect 2: the sign-in throttle was check-then-act: 30 parallel wrong passwords for one
account all got a 401 (limit 5). Each attempt is now counted atomically before its check."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import pyotp
from sqlalchemy import select

from tests.security.conftest import PASSWORD
from wirewarden.bootstrap import Container
from wirewarden.store.tables import LoginThrottle

PARALLEL = 30


def in_parallel(count: int, call: Callable[[], int]) -> list[int]:
    """`count` calls at once (released together by a barrier); their status codes."""
    barrier = threading.Barrier(count)
    answers: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        status = call()
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def attempts(container: Container, key: str) -> int | None:
    with container.deps.sessions() as db:
        return db.scalar(select(LoginThrottle.attempts).where(LoginThrottle.key == key))


def test_parallel_wrong_passwords_are_locked_out_after_the_limit(
    serve: Any, app: Any, container: Container, make_user: Any
) -> None:
    make_user("alice")
    url = serve(app)
    limit = container.settings.login_max_failures

    def guess() -> int:
        body = {"name": "alice", "password": "a wrong guess here"}
        return httpx.post(f"{url}/api/v1/auth/login", json=body, timeout=60).status_code

    answers = in_parallel(PARALLEL, guess)
    assert answers.count(401) == limit
    assert answers.count(429) == PARALLEL - limit
    assert attempts(container, "name:alice") == PARALLEL
    # The right password waits out the lockout like any other.
    good = httpx.post(f"{url}/api/v1/auth/login", json={"name": "alice", "password": PASSWORD})
    assert good.status_code == 429


def test_unknown_names_are_counted_the_same(serve: Any, app: Any, container: Container) -> None:
    url = serve(app)

    def guess() -> int:
        body = {"name": "ghost", "password": "a wrong guess here"}
        return httpx.post(f"{url}/api/v1/auth/login", json=body, timeout=60).status_code

    answers = in_parallel(PARALLEL, guess)
    assert answers.count(401) == container.settings.login_max_failures
    assert attempts(container, "name:ghost") == PARALLEL


def test_parallel_wrong_codes_at_the_totp_step_are_locked_out(
    serve: Any, app: Any, container: Container, make_user: Any
) -> None:
    make_user("alice")
    url = serve(app)
    with httpx.Client(base_url=url, timeout=60) as user:
        signed = user.post("/api/v1/auth/login", json={"name": "alice", "password": PASSWORD})
        headers = {"X-CSRF-Token": signed.json()["csrf_token"]}
        secret = user.post("/api/v1/auth/totp/enrol", headers=headers).json()["secret"]
        code = pyotp.TOTP(secret).now()
        assert user.post("/api/v1/auth/totp/confirm", json={"code": code}, headers=headers)
        user.post("/api/v1/auth/logout", headers=headers)
    half = httpx.Client(base_url=url, timeout=60)
    try:
        first = half.post("/api/v1/auth/login", json={"name": "alice", "password": PASSWORD})
        assert first.json()["status"] == "totp"
        assert attempts(container, "name:alice") == 0  # the right password is no failure
        headers = {"X-CSRF-Token": first.json()["csrf_token"]}

        def wrong_code() -> int:
            body = {"code": "000000" if code != "000000" else "111111"}
            return half.post("/api/v1/auth/login/totp", json=body, headers=headers).status_code

        answers = in_parallel(PARALLEL, wrong_code)
    finally:
        half.close()
    limit = container.settings.login_max_failures
    assert answers.count(401) == limit
    assert answers.count(429) == PARALLEL - limit
    assert attempts(container, "name:alice") == PARALLEL
