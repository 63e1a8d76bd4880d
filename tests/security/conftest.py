"""Security regression tests: the attacker's request, and a check that the harm did not
happen. They run against the same app and container as the API tests."""

from tests.api.conftest import (  # noqa: F401  (fixtures, reused rather than copied)
    anon,
    app,
    browser,
    client,
    client_of,
    container,
    dataplane,
    make_user,
    token,
)
