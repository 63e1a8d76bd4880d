"""Security regression tests: the attacker's request, and a check that the harm did not
happen. They run on the API fixtures (the ASGI app over SQLite, the in-memory data plane)."""

from tests.api.conftest import *  # noqa: F403
