"""The thread peer changes run on: answers, errors, and a restart after close."""

from __future__ import annotations

import asyncio
import threading

import pytest

from wirewarden.web.changes import ChangeThread


def test_runs_off_the_loop_and_passes_errors_through() -> None:
    changes = ChangeThread()

    async def scenario() -> None:
        name = await changes.run(lambda: threading.current_thread().name)
        assert name.startswith("changes")
        empty: dict[str, int] = {}
        with pytest.raises(KeyError):
            await changes.run(empty.__getitem__, "missing")

    asyncio.run(scenario())
    changes.close()


def test_a_closed_thread_starts_again() -> None:
    changes = ChangeThread()
    assert asyncio.run(changes.run(sum, [1, 2])) == 3
    changes.close()
    assert asyncio.run(changes.run(sum, [3, 4])) == 7
    changes.close()
