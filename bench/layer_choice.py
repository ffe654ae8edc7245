"""Measures channels-redis' core layer against its pub/sub layer, side by side.

One process, one private redis-server, a group of RECEIVERS channels each drained
by its own task (as a consumer would), and a sender doing `group_send` at RATE
messages per second. Prints what each layer delivered.

    .venv/bin/python bench/layer_choice.py [--receivers 50] [--rate 200] [--seconds 5]
"""

import argparse
import asyncio
import shutil
import socket
import subprocess
import tempfile
import time

from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _measure(layer, receivers: int, rate: int, seconds: float) -> dict:
    channels = [await layer.new_channel() for _ in range(receivers)]
    for channel in channels:
        await layer.group_add("room", channel)
    received = [0] * receivers
    latencies: list[float] = []

    async def drain(index: int, channel: str) -> None:
        while True:
            message = await layer.receive(channel)
            received[index] += 1
            latencies.append(time.perf_counter() - message["sent"])

    tasks = [asyncio.create_task(drain(i, c)) for i, c in enumerate(channels)]
    total = int(rate * seconds)
    start = time.perf_counter()
    for number in range(total):
        # Pace by the clock, so a slow send does not lower the offered rate.
        delay = start + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await layer.group_send(
            "room", {"type": "chat.message", "n": number, "sent": time.perf_counter()}
        )
    await asyncio.sleep(2)  # let the tail arrive
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await layer.flush()
    expected = total * receivers
    delivered = sum(received)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan")
    return {"expected": expected, "delivered": delivered, "p99_ms": p99}


async def compare(port: int, receivers: int, rate: int, seconds: float) -> None:
    """Runs both layers against the redis-server on `port` and prints the table."""
    hosts = [{"address": f"redis://127.0.0.1:{port}/0", "socket_timeout": 30}]
    layers = {
        "core (default capacity 100)": RedisChannelLayer(hosts=hosts),
        "pub/sub": RedisPubSubChannelLayer(hosts=hosts),
    }
    print(f"{receivers} receivers, {rate} messages/s for {seconds} s")
    print(f"{'layer':30} {'delivered':>12} {'expected':>10} {'lost':>7} {'p99 ms':>8}")
    for name, layer in layers.items():
        result = await _measure(layer, receivers, rate, seconds)
        lost = 1 - result["delivered"] / result["expected"]
        print(
            f"{name:30} {result['delivered']:>12} {result['expected']:>10} "
            f"{lost:>7.1%} {result['p99_ms']:>8.1f}"
        )


def main(receivers: int, rate: int, seconds: float) -> None:
    """Starts a private redis-server, compares the layers on it, and stops it."""
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="layer-bench-")
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        asyncio.run(compare(port, receivers, rate, seconds))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receivers", type=int, default=50)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5)
    options = parser.parse_args()
    main(options.receivers, options.rate, options.seconds)
