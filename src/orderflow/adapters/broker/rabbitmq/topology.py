"""Names and layout of the RabbitMQ engine's exchanges and queues.

Publishers hash a message's key to one of `partitions` shards and route it to the prefix's direct
exchange with the key `<topic>.p<N>`. Each group has one quorum queue per shard, bound to that
shard's routing key of every topic it reads, so a group sees a key's messages in publish order in
one queue (across its topics, too). Only one member of the group consumes a shard at a time: it
holds the shard's lock, an exclusive consumer on a small classic queue (quorum queues do not
enforce exclusive consumers on 3.10), and the shard queue is single-active-consumer as a second
guard. No plugin is needed: the publisher does the hashing a consistent-hash exchange would.
"""

from __future__ import annotations

from dataclasses import dataclass

from orderflow.adapters.broker.partitioning import check_prefix, partition_of
from orderflow.ports.broker import ConsumerSpec

DEFAULT_PARTITIONS = 8
# A last-resort guard against a crash loop the adapter somehow did not count: the adapter itself
# dead-letters at the group's max_attempts, with the reason. Fixed, because a queue's arguments
# cannot change once declared.
DELIVERY_LIMIT_BACKSTOP = 100

# Our own headers; everything else on a message is the publisher's.
KEY = "x-orderflow-key"
TOPIC = "x-orderflow-topic"
GROUP = "x-orderflow-group"
REASON = "x-orderflow-reason"
ATTEMPTS = "x-orderflow-attempts"
MESSAGE_ID = "x-orderflow-id"
DEAD_AT = "x-orderflow-dead-at"  # microseconds since the epoch: a dead letter's position
# On a replayed dead letter (sent straight to its group's shard queue): the position it had, so
# the shard's owner does not drop it as a repeated publish of a message id it saw.
REPLAYED_FROM = "x-orderflow-replayed-from"
RESERVED_PREFIXES = ("x-orderflow-", "x-death", "x-delivery-count", "x-first-death", "x-last-death")


def expiry_arguments(spec: ConsumerSpec) -> dict[str, int]:
    """Queue arguments of an ephemeral group: RabbitMQ deletes a queue unused (no consumer, no
    get, no redeclaration) for `x-expires` ms. Every queue of the group gets them, also the
    lock and members queues, so the declarations of one group always agree."""
    if spec.expires_after is None:
        return {}
    return {"x-expires": max(1000, int(spec.expires_after * 1000))}


@dataclass(frozen=True, slots=True)
class Topology:
    prefix: str
    partitions: int = DEFAULT_PARTITIONS

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    @property
    def exchange(self) -> str:
        return f"{self.prefix}.topics"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.prefix}.dlx"

    def routing_key(self, topic: str, key: str) -> str:
        return self.shard_routing_key(topic, partition_of(key, self.partitions))

    def shard_routing_key(self, topic: str, partition: int) -> str:
        return f"{topic}.p{partition}"

    def shard_queue(self, group: str, partition: int) -> str:
        return f"{self.prefix}.g.{group}.s{partition}"

    def lock_queue(self, group: str, partition: int) -> str:
        return f"{self.prefix}.g.{group}.lock{partition}"

    def hand_backs_queue(self, group: str, partition: int) -> str:
        return f"{self.prefix}.g.{group}.handbacks{partition}"

    def members_queue(self, group: str) -> str:
        return f"{self.prefix}.g.{group}.members"

    def dead_letter_queue(self, group: str) -> str:
        return f"{self.prefix}.dlq.{group}"

    def group_queues(self, group: str) -> list[str]:
        return [
            *(self.shard_queue(group, n) for n in range(self.partitions)),
            *(self.lock_queue(group, n) for n in range(self.partitions)),
            *(self.hand_backs_queue(group, n) for n in range(self.partitions)),
            self.members_queue(group),
            self.dead_letter_queue(group),
        ]
