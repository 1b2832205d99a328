"""Retry policies per consumer group from settings: a group's own entry over the general ones,
read from the environment as JSON; a policy for a group that does not exist is refused."""

from __future__ import annotations

import pytest

from orderflow.bootstrap import consumer_spec, redelivery_policy
from orderflow.config import Settings
from orderflow.services.runtime.retrying import Backoff, RedeliveryPolicy


def test_a_groups_own_policy_overrides_the_general_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "ORDERFLOW_RETRY_POLICIES", '{"payment": {"max_attempts": 8, "max_delay": 120}}'
    )
    settings = Settings(max_attempts=4, retry_base_delay=0.5, retry_max_delay=10.0)

    assert redelivery_policy("payment", settings) == RedeliveryPolicy(8, Backoff(0.5, 120.0))
    assert redelivery_policy("inventory", settings) == RedeliveryPolicy(4, Backoff(0.5, 10.0))
    # The broker counts attempts with the same number the policy decides by.
    assert consumer_spec("payment", settings).max_attempts == 8
    assert consumer_spec("orders", settings).max_attempts == 4


def test_a_policy_for_an_unknown_group_is_refused() -> None:
    settings = Settings(retry_policies={"paymnet": {"max_attempts": 8}})
    with pytest.raises(ValueError, match="paymnet"):
        redelivery_policy("payment", settings)


@pytest.mark.parametrize("policy", [{"max_attempts": 0}, {"base_delay": -1}, {"tries": 3}])
def test_an_unusable_policy_is_refused_when_read(policy: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="retry_policies"):
        Settings(retry_policies={"payment": policy})
