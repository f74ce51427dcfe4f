"""Schemathesis over the whole OpenAPI schema, once per role: no 5xx, no answer off its schema.

The schema is the one the app factory builds (the test checks the live server serves exactly
it), so pytest can collect one test per operation and role. Every request goes to a running
server over a writable copy of the sample, with the logged-in token of the role: a role that
may not use an operation gets its 403 quickly, and the fuzzer still checks that 403 against
the schema.

Budget (CI runs this every time): admin and grid member in depth (schemathesis' coverage
phase: boundary values of every parameter), the other roles with the schema's examples and
a few random cases; deterministic (derandomized: the same cases every run, so a failure is
reproducible and nothing flakes), no example database on disk. About 3.5 CPU-minutes for
471 tests (94 operations x 5 roles).

Bugs this found and that were fixed: every 422 was documented as ``{"detail": str}`` while
field errors answer a list (``api.errors.error_responses``); errors of HTML and file routes
were documented as HTML although they are JSON; ``low``/``high`` near 5e-324 overflowed the
grid count of ``/villages/{code}/plans/counts`` into a 500; a one-position cutting line was a
GEOS error and a 500; ``false`` was accepted as a coordinate.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from api.app import create_app
from gis_grid.config import Settings
from tests.conftest import login_headers
from tests.security_support import TEST_USERS

pytestmark = [pytest.mark.postgis, pytest.mark.slow]

ROLES = tuple(TEST_USERS)
#: Fuzzed in depth: every phase, including schemathesis' coverage phase (boundary values of
#: every parameter: 5e-324, empty strings, missing fields...). The administrator reaches
#: every route's full code path; the grid member every row-level-security path.
DEEP_ROLES = ("admin", "member")
#: Fuzzed lightly (explicit examples and a few random cases): their routes are the same
#: code, mostly answered 403 before any work, so depth there buys little for its CI time.
LIGHT_ROLES = tuple(r for r in ROLES if r not in DEEP_ROLES)

#: Random examples per operation and role (fuzzing phase). Small on purpose: 93 operations.
MAX_EXAMPLES = 3


def _schema_dict() -> dict[str, Any]:
    # The database is never reached: the schema is built from the routes alone.
    app = create_app(Settings(database_url="postgresql+psycopg://u:p@127.0.0.1:1/none"))
    return app.openapi()


def _load(*, coverage: bool) -> Any:
    loaded: Any = schemathesis.openapi.from_dict(SCHEMA_DICT)
    # Excluded on purpose, each for a reason (everything else is fuzzed, for every role):
    loaded = loaded.exclude(
        # Logging out revokes the very token the rest of the run uses (tests/test_security.py
        # covers logout and revocation).
        path="/api/v1/auth/logout",
        method="POST",
    )
    loaded.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, database="none")
    loaded.config.phases.coverage.enabled = coverage
    return loaded


SCHEMA_DICT = _schema_dict()
deep_schema = _load(coverage=True)
light_schema = _load(coverage=False)

#: What every answer must satisfy: no 5xx, the status' declared body schema and media type.
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def fuzz_tokens(writable_server_url: str) -> dict[str, dict[str, str]]:
    """Every role's token, fetched before any fuzzing (random logins may trip the lockout)."""
    return {role: login_headers(writable_server_url, role) for role in ROLES}


def test_live_server_serves_the_fuzzed_schema(writable_server_url: str) -> None:
    served = httpx.get(f"{writable_server_url}/openapi.json", timeout=30).json()
    assert served == SCHEMA_DICT


def test_every_operation_is_fuzzed_but_the_one_excluded() -> None:
    documented = {
        f"{method.upper()} {path}"
        for path, operations in SCHEMA_DICT["paths"].items()
        for method in operations
    }
    for loaded in (deep_schema, light_schema):
        fuzzed = {result.ok().label for result in loaded.get_all_operations()}
        assert documented - fuzzed == {"POST /api/v1/auth/logout"}


@pytest.mark.parametrize("role", DEEP_ROLES)
@deep_schema.parametrize()
@FUZZ
def test_api_in_depth(
    case: schemathesis.Case,
    role: str,
    writable_server_url: str,
    fuzz_tokens: dict[str, dict[str, str]],
) -> None:
    case.call_and_validate(
        base_url=writable_server_url, headers=fuzz_tokens[role], checks=CHECKS, timeout=60
    )


@pytest.mark.parametrize("role", LIGHT_ROLES)
@light_schema.parametrize()
@FUZZ
def test_api_lightly(
    case: schemathesis.Case,
    role: str,
    writable_server_url: str,
    fuzz_tokens: dict[str, dict[str, str]],
) -> None:
    case.call_and_validate(
        base_url=writable_server_url, headers=fuzz_tokens[role], checks=CHECKS, timeout=60
    )
