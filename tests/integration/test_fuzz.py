"""Schemathesis against the app's own OpenAPI: generated valid and invalid requests, never a 5xx.

Every operation of the schema (admin ones included: the app has an admin token the fuzzer never
learns, so they must answer 401) is driven with schema-valid ("positive") and, where it takes input,
schema-invalid ("negative") cases. All of schemathesis's default checks run (no server error, status
codes, content types, headers and bodies as documented, invalid data rejected) except
`positive_data_acceptance`: a filter value the library does not have (a schema-valid string) is a
422 naming the valid values, by design. Bounded: a fixed number of derandomized examples per operation.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from rag.config import Settings
from rag.serve.http import create_app

EXAMPLES = 25
KNOWN_SLUG = "pull-based-replenishment"
WITH_INPUT = [
    ("POST", "/search"),
    ("POST", "/context"),
    ("GET", "/patterns"),
    ("GET", "/patterns/{slug}"),
    ("GET", "/patterns/{slug}/related"),
    ("GET", "/patterns/{slug}/similar"),
]
WITHOUT_INPUT = [
    ("GET", "/facets"),
    ("GET", "/health"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/stats"),
    ("POST", "/admin/reindex"),
    ("POST", "/admin/reload"),
]


@pytest.fixture(scope="module")
def api_schema(patterns_index_dir, embedder):
    app = create_app(Settings(index_dir=patterns_index_dir, admin_token="a-token-the-fuzzer-never-sees"), embedder=embedder)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_operation_is_fuzzed(api_schema):
    operations = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert operations == set(WITH_INPUT + WITHOUT_INPUT)


@pytest.mark.parametrize(
    ("method", "path", "mode"),
    [(m, p, "positive") for m, p in WITH_INPUT + WITHOUT_INPUT] + [(m, p, "negative") for m, p in WITH_INPUT],
)
def test_no_server_errors_and_responses_as_documented(api_schema, method, path, mode):
    operation = api_schema[path][method]
    excluded = [schemathesis.checks.positive_data_acceptance]
    seen: Counter[int] = Counter()

    generation = schemathesis.GenerationMode(mode)
    cases = operation.as_strategy(generation_mode=generation)
    if "{slug}" in path and mode == "positive":  # random slugs are all 404: half the cases name a real pattern
        cases = cases | operation.as_strategy(generation_mode=generation, path_parameters={"slug": KNOWN_SLUG})

    @given(case=cases)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    def fuzz(case):
        response = case.call_and_validate(excluded_checks=excluded)
        seen[response.status_code] += 1

    fuzz()
    if (method, path) in WITH_INPUT:
        assert sum(seen.values()) >= EXAMPLES // 3, seen  # it really ran (hypothesis may stop early on small input spaces)
    assert not [s for s in seen if s >= 500], seen
    if path.startswith("/admin"):
        assert set(seen) == {401}, seen  # never reached without the token
