"""Security regression tests run against the same app and container as the API tests."""

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
