"""Property-based API fuzzing (schemathesis, driven by the OpenAPI document) against the real 3-process
debug stack: every operation, valid and invalid inputs; no 5xx, no traceback, answers as documented.

The schema is loaded from `build_document()` at collection time (the server serves exactly that document,
see test_openapi.py): schemathesis' lazy `from_fixture` loader relies on a pytest internal that pytest 9
no longer has.

Bounded: `FUZZ_EXAMPLES` examples per operation (default 25) for about 20 operations, well under 60 s.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from paychan_server.api.openapi_doc import build_document
from tests.support.plugin import ServicesFactory
from tests.support.services import Services

log = logging.getLogger("paychan.tests")
pytestmark = pytest.mark.functional

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
STATUSES: Counter[int] = Counter()
TRACEBACK_MARKERS = ("Traceback", 'File "')


@pytest.fixture(scope="module")
def fuzz_services(module_services_factory: ServicesFactory) -> Iterator[Services]:
    """One debug stack for the whole fuzz run (a failing run keeps its folder, logs included)."""
    svc = module_services_factory("fuzz")
    log.info("fuzzing %s", svc.url)
    yield svc
    svc.stop()
    log.info("fuzz run: %d requests, answers by status %s", sum(STATUSES.values()), dict(sorted(STATUSES.items())))
    for line in svc.server.logfile.read_text(errors="replace").splitlines():
        assert "Traceback" not in line, f"the server logged a traceback:\n{svc.logs()}"


schema = schemathesis.openapi.from_dict(build_document())
schema.config.generation.update(modes=list(GenerationMode), max_examples=EXAMPLES, deterministic=True)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_fuzz(case: Case[Any], fuzz_services: Services) -> None:
    response = case.call(base_url=fuzz_services.url, timeout=10)
    STATUSES[response.status_code] += 1
    if case.operation.path == "/openapi.json" and case.method == "GET" and response.status_code == 200:
        assert response.json() == schema.raw_schema  # what is fuzzed is what is served
    body = response.text
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {body[:300]}"
    for marker in TRACEBACK_MARKERS:
        assert marker not in body, f"traceback in the answer to {case.method} {case.formatted_path}"
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                             response_schema_conformance])
