"""The API fuzzed from its own OpenAPI schema, in process (schemathesis).

Generated requests with an admin key (every route open to it) and without any key: no
answer is a server error, and every answer matches the schema (status code documented,
body valid, content type declared). A schema-valid request may still be refused with a
422 naming the reason (a file whose content is not a venue export, an override of an
account no decision has run on): what the schema cannot say, the library checks, so the
"positive data is accepted" check is left out. The app serves copies of the stores, so whatever the
generated writes do stays out of the other tests.
"""

import shutil

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from traderseg.service import ServiceSettings, VenueStore, create_app

from .conftest import auth


@pytest.fixture(scope="module")
def fuzz_app(venues, keys, tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    for name in ("alpha", "beta"):
        shutil.copy(venues["root"] / "pristine" / f"{name}.duckdb", root / f"{name}.duckdb")
    return create_app(ServiceSettings(
        venues={n: VenueStore(db=root / f"{n}.duckdb", model=venues["model"])
                for n in ("alpha", "beta")},
        keys_file=venues["root"] / "keys.json"))


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


def _operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


def _fuzz(operation, headers, examples, mode):
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    try:
        run()
    except Unsatisfiable:
        # negative cases of an operation without any input: there is nothing to break
        if mode is not GenerationMode.NEGATIVE:
            raise


def test_every_operation_is_fuzzed(api_schema):
    paths = {op.path for op in _operations(api_schema)}
    assert {"/v1/accounts/{account_id}", "/v1/accounts/{account_id}/controls", "/v1/ingest",
            "/v1/audiences/export", "/healthz", "/metrics"} <= paths


def test_no_server_error_and_answers_match_the_schema(api_schema, keys):
    for operation in _operations(api_schema):
        _fuzz(operation, auth(keys["admin"]), 8, GenerationMode.POSITIVE)
        _fuzz(operation, auth(keys["admin"]), 4, GenerationMode.NEGATIVE)


def test_without_a_key_the_answers_match_the_schema_too(api_schema):
    for operation in _operations(api_schema):
        _fuzz(operation, None, 2, GenerationMode.POSITIVE)
