"""Asks the servers for /healthz at a steady pace, as a container's health check does, and
reports how long the answers took: a server busy with a storm must still answer it.

Each probe is its own request, started on time whatever the earlier ones are doing,
so one slow answer does not hide the next.
"""

import asyncio
import time
from collections.abc import Sequence

from bench.targets import HOST

# The web image's HEALTHCHECK gives a probe 5 s (Dockerfile); slower counts as failed.
DOCKER_TIMEOUT = 5.0


class HealthProbe:
    """Probes every port's /healthz every `every` seconds while running."""

    def __init__(self, ports: Sequence[int], every: float = 0.5, timeout: float = 60.0) -> None:
        self.ports = list(ports)
        self.every = every
        self.timeout = timeout
        self.seconds: list[float] = []  # each probe answered with 200: its time
        self.failed = 0  # no answer within `timeout`, refused, or not 200
        self._probes: set[asyncio.Task] = set()
        self._pacer: asyncio.Task | None = None

    def start(self) -> None:
        """Starts probing."""
        self._pacer = asyncio.create_task(self._pace())

    async def stop(self) -> dict:
        """Stops starting probes, waits for those under way; returns the figures."""
        if self._pacer is not None:
            self._pacer.cancel()
            await asyncio.gather(self._pacer, return_exceptions=True)
        await asyncio.gather(*self._probes, return_exceptions=True)
        ordered = sorted(self.seconds)
        return {
            "probes": len(ordered) + self.failed,
            "failed": self.failed,
            "p50_s": round(ordered[len(ordered) // 2], 3) if ordered else None,
            "max_s": round(ordered[-1], 3) if ordered else None,
            "over_docker_timeout": sum(s > DOCKER_TIMEOUT for s in ordered),
        }

    async def _pace(self) -> None:
        while True:
            for port in self.ports:
                task = asyncio.create_task(self._probe(port))
                self._probes.add(task)
                task.add_done_callback(self._probes.discard)
            await asyncio.sleep(self.every)

    async def _probe(self, port: int) -> None:
        began = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                status = await _get_status(port, "/healthz")
        except (TimeoutError, OSError, ValueError):
            self.failed += 1
            return
        if status != 200:
            self.failed += 1
            return
        self.seconds.append(time.monotonic() - began)


async def _get_status(port: int, path: str) -> int:
    """The status of a plain HTTP/1.1 GET of `path`; the body is read and dropped."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        status_line = (await reader.readline()).split()
        await reader.read()  # to the end: the answer is whole
        if len(status_line) < 2:
            raise ValueError("no HTTP status line")
        return int(status_line[1])
    finally:
        writer.close()
