"""schemathesis, driven by the running server's /openapi.json: no 5xx, every answer as documented.

A short, derandomized run (the same cases every time) of valid and invalid requests per operation,
with a valid identity assertion so that they get past authentication and reach the handlers. Every
check schemathesis enables by default runs on every response.

schemathesis' own pytest integration (`schemathesis.pytest.from_fixture`) cannot run here: with
pytest 9.2 it fails on `Function._nodeid`, which pytest no longer has. So each operation gets a
plain Hypothesis test over the operation's own strategy (`APIOperation.as_strategy`).
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import BaseSchema, Case, GenerationMode, Response
from schemathesis.specs.openapi.checks import positive_data_acceptance

from orderflow.adapters.identity.assertions import HEADER, AssertionSigner, ensure_signing_key
from orderflow.demo.catalog import PRODUCTS
from tests.integration.api.harness import Api
from tests.support.system import admin, customer

MAX_EXAMPLES = 40

OPERATIONS = [
    "POST /api/v1/orders",
    "GET /api/v1/orders",
    "GET /api/v1/orders/{order_id}",
    "POST /api/v1/orders/{order_id}/cancel",
    "GET /api/v1/products",
    "GET /api/v1/admin/dead-letters",
    "GET /api/v1/admin/dead-letters/{group}/{position}",
    "POST /api/v1/admin/dead-letters/{group}/{position}/replay",
    "DELETE /api/v1/admin/dead-letters/{group}/{position}",
    "GET /healthz",
    "GET /readyz",
]


@pytest.fixture(scope="module")
def identity(api: Api) -> dict[str, str]:
    # Long enough to outlive the run (the gateway's own assertions last 60 s). Passed to every
    # call as an explicit header, so schemathesis' auth check also probes without it and with a
    # made-up one, and expects a 401 for both.
    signer = AssertionSigner(ensure_signing_key(api.system.data_dir / "keys"), ttl=600)
    return {HEADER: signer.sign(customer("fuzz@example.com"))}


@pytest.fixture(scope="module")
def admin_identity(api: Api) -> dict[str, str]:
    """The admin routes are fuzzed as an admin, so cases reach their handlers, not the 403."""
    signer = AssertionSigner(ensure_signing_key(api.system.data_dir / "keys"), ttl=600)
    return {HEADER: signer.sign(admin())}


@pytest.fixture(scope="module")
def api_schema(api: Api) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{api.system.url}/openapi.json")


def test_every_operation_is_fuzzed(api_schema: BaseSchema) -> None:
    labels = [op.ok().label for op in api_schema.get_all_operations()]
    assert sorted(labels) == sorted(OPERATIONS)


def refused_for_a_reason_the_schema_cannot_state(case: Case, response: Response) -> bool:
    """A schema-valid request the API must still refuse: these depend on data or state."""
    problem = response.json()
    if response.status_code == 400 and "cursor" in case.query:
        return bool(problem["title"] == "Bad cursor")  # opaque: only cursors the API issued
    if response.status_code == 422 and case.operation.label == "POST /api/v1/orders":
        return bool(
            problem["title"] == "Order cannot be priced"  # the sku is not in the catalog
            # JSON Schema can say "items are unique" but not "unique by sku".
            or "duplicate sku" in problem["detail"]
            # A key reused with another body: whether it was used before is state.
            or problem["title"] == "Idempotency key reused"
        )
    return False


def with_catalog_skus(case: Case) -> Case:
    items = case.body["items"][: len(PRODUCTS)]
    for item, (sku, _, _) in zip(items, PRODUCTS, strict=False):
        item["sku"] = sku
    case.body["items"] = items
    return case


MATRIX = [
    pytest.param(label, mode, id=f"{label} {mode}")
    for label in OPERATIONS
    for mode in GenerationMode
    # Without parameters or a body there is no invalid request to make (Hypothesis would say
    # Unsatisfiable); the positive run still checks these two.
    if not (mode is GenerationMode.NEGATIVE and label in {"GET /healthz", "GET /readyz"})
]


@pytest.mark.parametrize(("label", "mode"), MATRIX)
def test_operation_conforms_to_its_openapi(
    api_schema: BaseSchema,
    identity: dict[str, str],
    admin_identity: dict[str, str],
    label: str,
    mode: GenerationMode,
) -> None:
    if "/admin/" in label:
        identity = admin_identity
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None

    strategy = operation.as_strategy(mode)
    if label == "POST /api/v1/orders" and mode is GenerationMode.POSITIVE:
        # Random skus are almost never in the catalog: half the cases order real products, so
        # the run also reaches pricing, the intake and its commit.
        strategy = st.one_of(strategy, strategy.map(with_catalog_skus))

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=strategy)
    def fuzz(case: Case) -> None:
        if mode is GenerationMode.NEGATIVE:
            # A case that leaves the assertion out on purpose is sent without one (401 expected).
            case.call_and_validate(headers=identity if HEADER in (case.headers or {}) else {})
            return
        # Every default check, except that "schema-valid means accepted" is replaced by the same
        # rule with the refusals above allowed (each stated narrowly, so others still fail).
        response = case.call_and_validate(
            headers=identity, excluded_checks=[positive_data_acceptance]
        )
        if response.status_code in (400, 422):
            assert refused_for_a_reason_the_schema_cannot_state(case, response), (
                response.status_code,
                response.text,
                case.as_curl_command(),
            )

    fuzz()
