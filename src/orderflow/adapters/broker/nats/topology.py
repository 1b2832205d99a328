"""Names and layout of the NATS engine's streams, subjects and consumers.

One stream per prefix holds every topic (`<prefix>.t.<topic>.p<N>`), one more holds the dead
letters (`<prefix>.dlq.<group>`), and a key-value bucket counts, per (consumer, stream
sequence), the deliveries a member handed back unprocessed. A key always lands in the same
partition N, and each
(group, topic, partition) has one durable pull consumer with `max_ack_pending=1`: the server
itself then never hands out a partition's next message while one is unsettled, across every
member process, through redeliveries and delayed naks. That is what keeps per-key order on
nats-server 2.9, which has neither pinned consumers nor subject-mapped partitions.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from orderflow.adapters.broker.partitioning import check_prefix, partition_of

DEFAULT_PARTITIONS = 16

# Our own headers; everything else on a message is the publisher's.
KEY = "Orderflow-Key"
MESSAGE_ID = "Orderflow-Id"
TOPIC = "Orderflow-Topic"
GROUP = "Orderflow-Group"
REASON = "Orderflow-Reason"
ATTEMPTS = "Orderflow-Attempts"
NATS_MSG_ID = "Nats-Msg-Id"
# On a replayed dead letter: the one group it is for (the others' members skip it).
REPLAY_FOR = "Orderflow-Replay-For"
RESERVED = frozenset({KEY, MESSAGE_ID, TOPIC, GROUP, REASON, ATTEMPTS, NATS_MSG_ID, REPLAY_FOR})


def token(name: str) -> str:
    """A name usable inside stream/consumer names: readable, and still unique when mangled."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    if safe == name:
        return name
    return f"{safe}_{hashlib.blake2s(name.encode(), digest_size=4).hexdigest()}"


@dataclass(frozen=True, slots=True)
class Topology:
    prefix: str
    partitions: int = DEFAULT_PARTITIONS

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    @property
    def stream(self) -> str:
        return f"{token(self.prefix)}_topics"

    @property
    def dlq_stream(self) -> str:
        return f"{token(self.prefix)}_dlq"

    @property
    def stream_subjects(self) -> str:
        return f"{self.prefix}.t.>"

    @property
    def dlq_subjects(self) -> str:
        return f"{self.prefix}.dlq.>"

    def subject(self, topic: str, key: str) -> str:
        return self.partition_subject(topic, partition_of(key, self.partitions))

    def partition_subject(self, topic: str, partition: int) -> str:
        return f"{self.prefix}.t.{topic}.p{partition}"

    def durable(self, group: str, topic: str, partition: int) -> str:
        return f"{token(group)}-{token(topic)}-p{partition}"

    @property
    def hand_backs_bucket(self) -> str:
        """The key-value bucket counting deliveries handed back unprocessed (see the consumer)."""
        return f"{token(self.prefix)}_handbacks"

    def hand_back_key(self, durable: str, stream_seq: int) -> str:
        return f"{durable}.{stream_seq}"

    def dlq_subject(self, group: str) -> str:
        return f"{self.prefix}.dlq.{token(group)}"
