"""Embedded broker throughput: publish/s, then consume+ack/s, in batches.

Run: .venv/bin/python bench/broker_throughput.py [--messages N] [--batch B] [--consumers C]
     [--synchronous full|normal] [--groups G]
Each message has its own key (like one order id per message), as the pipeline does.

Recorded on the 2-core development VM (ext4, shared with other test runs, so +-40%):
  defaults (50,000 msgs, batch 200, 1 group x 2 consumers), synchronous=full:
      publish 58,000-96,000 msg/s, consume+ack 46,000-70,000 deliveries/s
  same, synchronous=normal: publish 66,000-105,000 msg/s, consume+ack 41,000-80,000/s
  --groups 3 --consumers 3 --batch 100: publish 26,000-43,000 msg/s (x3 rows), consume+ack
      26,000-32,000 deliveries/s
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from orderflow.adapters.broker.embedded import EmbeddedBroker
from orderflow.ports.broker import Ack, ConsumerSpec, OutgoingMessage

PAYLOAD = b'{"order_id": "00000000-0000-0000-0000-000000000000", "status": "paid", "n": 1}' * 3


async def consume(broker: EmbeddedBroker, spec: ConsumerSpec, batch: int, stop: int) -> int:
    consumer = await broker.consumer(spec)
    done = 0
    while done < stop:
        deliveries = await consumer.fetch(batch, timeout=1.0)
        if not deliveries:
            break
        await consumer.settle([(d, Ack()) for d in deliveries])
        done += len(deliveries)
    await consumer.close()
    return done


async def run(args: argparse.Namespace, path: Path) -> None:
    broker = EmbeddedBroker(path, synchronous=args.synchronous.upper())
    await broker.connect()
    specs = [
        ConsumerSpec(group=f"group-{g}", topics=("orders.placed",), max_in_flight=args.batch)
        for g in range(args.groups)
    ]
    for spec in specs:
        await broker.declare(spec)
    messages = [
        OutgoingMessage("orders.placed", key=f"order-{i}", message_id=f"m-{i}", payload=PAYLOAD)
        for i in range(args.messages)
    ]

    started = time.perf_counter()
    for i in range(0, len(messages), args.batch):
        await broker.publish(messages[i : i + args.batch])
    publish_s = time.perf_counter() - started

    started = time.perf_counter()
    per_group = args.messages // args.consumers
    counts = await asyncio.gather(
        *(
            consume(broker, spec, args.batch, per_group)
            for spec in specs
            for _ in range(args.consumers)
        )
    )
    consume_s = time.perf_counter() - started
    await broker.close()

    consumed = sum(counts)
    print(
        f"synchronous={args.synchronous} messages={args.messages} batch={args.batch}"
        f" groups={args.groups} consumers/group={args.consumers}"
    )
    print(f"publish:      {args.messages / publish_s:10,.0f} msg/s  ({publish_s:.2f} s)")
    print(f"consume+ack:  {consumed / consume_s:10,.0f} deliveries/s  ({consume_s:.2f} s)")
    assert consumed == args.messages * args.groups, f"consumed {consumed}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--groups", type=int, default=1)
    parser.add_argument("--synchronous", choices=["full", "normal"], default="full")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the file (disk!)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        asyncio.run(run(args, Path(tmp) / "broker.db"))


if __name__ == "__main__":
    main()
