"""A run of orders whose outcome is known in advance, for tests that count what happened.

With `max_attempts=2` (MAX_ATTEMPTS_ENV), `tok_fail_transient` (the simulator fails its first two
calls) uses up both attempts of its payment command: a dead letter, and the order `failed`.
"""

from __future__ import annotations

from collections import Counter

from orderflow.domain.identity import Identity
from tests.support.orders import Client, Planned
from tests.support.system import customer

MAX_ATTEMPTS_ENV = {"ORDERFLOW_MAX_ATTEMPTS": "2"}

KNOWN = {"tok_visa": ("confirmed", 5), "tok_decline": ("payment_failed", 3)}
KNOWN["tok_fail_transient"] = ("failed", 2)
ACCEPTED = sum(n for _, n in KNOWN.values())
FINISHED = Counter({status: n for status, n in KNOWN.values()})
DEAD_LETTERS = KNOWN["tok_fail_transient"][1]
REACHED = Counter(reserved=ACCEPTED, paid=FINISHED["confirmed"], confirmed=FINISHED["confirmed"])


def known_orders() -> list[Planned]:
    people = [customer(f"known-{i}@example.com") for i in range(3)]
    tokens = [token for token, (_, n) in KNOWN.items() for _ in range(n)]
    return [
        Planned([("MUG-WHT", 1)], token, KNOWN[token][0], people[i % len(people)])
        for i, token in enumerate(tokens)
    ]


async def run_known_orders(client: Client) -> dict[str, dict[str, object]]:
    """Submit them all, wait until every one is settled, check each reached its status."""
    planned = known_orders()
    owners: dict[str, Identity] = {}
    expected: dict[str, str | None] = {}
    for p in planned:
        response = await client.place(p)
        assert response.status_code == 202, response.text
        owners[response.json()["id"]] = p.who
        expected[response.json()["id"]] = p.expected
    final = await client.wait_settled(owners)
    assert {oid: doc["status"] for oid, doc in final.items()} == expected
    return final
