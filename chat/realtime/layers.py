"""The Redis pub/sub channel layer, told to report when its subscriber connection came back.

Pub/sub delivers at most once: whatever was published while this process's
subscriber connection was down is gone. redis-py reconnects and re-subscribes by
itself; this layer adds what the chat needs on top: a callback on every
reconnect, so the process can ask the sockets that were open meanwhile to
reconnect and `sync`; a generation number that tells which sockets those are;
and a way for a new socket to wait until the subscription is back, so that
sockets opened after the outage are not asked to reconnect at all.
"""

import asyncio
import logging
import types
from collections.abc import Callable

from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
)
from channels_redis.utils import _wrap_close, decode_hosts
from redis.exceptions import RedisError

from chat import metrics
from chat.realtime.rounds import Rounds

logger = logging.getLogger(__name__)

_listeners: list[Callable[[], None]] = []
_generation = 0

# How long a new socket waits for a lost subscriber connection to come back.
READY_TIMEOUT_SECONDS = 5.0


def on_layer_reconnect(listener: Callable[[], None]) -> None:
    """Calls `listener` whenever a subscriber connection of the layer was re-established."""
    _listeners.append(listener)


def layer_generation() -> int:
    """Counts this process's subscriber reconnects: a socket that saw it change may lack frames."""
    return _generation


def _notify() -> None:
    global _generation
    _generation += 1
    metrics.layer_reconnected()
    logger.warning("channel layer reconnected to Redis: live frames may have been lost")
    for listener in _listeners:
        try:
            listener()
        except Exception:
            logger.exception("a layer reconnect listener failed")


async def layer_ready(layer) -> None:
    """Waits until the layer's subscriber connections are up (at once for other layers).

    Raises ConnectionError when they stay down: the caller treats it as an outage.
    """
    ready = getattr(layer, "ready", None)
    if ready is not None:
        await ready()


class _Shard(RedisSingleShardConnection):
    """A shard connection whose pub/sub client reports losses and reconnects."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.healthy = asyncio.Event()
        self.healthy.set()
        # Publishes that arrive while a pipeline is on its way share the next one.
        self._publishes = Rounds(self._publish_now)

    async def publish_many(self, publishes: list[tuple[str, bytes]]) -> None:
        """Publishes (channel, message) pairs in order, in one pipeline with whatever
        else is waiting to be published on this shard (chat/realtime/rounds.py)."""
        await self._publishes.submit(publishes)

    async def _publish_now(self, publishes: list[tuple[str, bytes]]) -> None:
        # The shard's lock orders these against channels-redis' own publishes.
        async with self._lock:
            self._ensure_redis()
            pipeline = self._redis.pipeline(transaction=False)
            for channel, packed in publishes:
                pipeline.publish(channel, packed)
            await pipeline.execute()

    async def _do_receiving(self) -> None:
        """channels-redis' receive loop, which also notices a lost connection and retries soon.

        Its own loop logs a traceback and sleeps a second on every failed read, and
        ends for good on a timeout; this one marks the shard unhealthy (new sockets
        wait), retries with a short back-off, and never ends but by cancellation.
        """
        delay = 0.05
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=0.1
                    )
                    self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
                delay = 0.05
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.healthy.is_set():
                    logger.warning("lost the layer's subscriber connection: %s", exc)
                self.healthy.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
            except Exception:
                logger.exception("receiving from the channel layer failed")
                await asyncio.sleep(1.0)

    def _ensure_redis(self) -> None:
        fresh = self._redis is None
        super()._ensure_redis()
        if not fresh:
            return
        pubsub = self._pubsub
        resubscribe = pubsub.on_connect
        shard = self

        async def on_connect(pubsub_self, connection) -> None:
            await resubscribe(connection)
            shard.healthy.set()
            _notify()

        # PubSub registers `self.on_connect` (weakly, so it must be a bound method) on
        # its connection after taking it, already connected, from the pool: it runs
        # only when that connection is re-established, never for the first one.
        pubsub.on_connect = types.MethodType(on_connect, pubsub)

    async def subscribe_many(self, channels: list[str]) -> None:
        """Subscribes to several channels in one request (channels-redis sends one each)."""
        async with self._lock:
            new = [channel for channel in channels if channel not in self._subscribed_to]
            if not new:
                return
            self._ensure_redis()
            self._ensure_receiver()
            await self._pubsub.subscribe(*new)
            self._subscribed_to.update(new)

    async def unsubscribe_many(self, channels: list[str]) -> None:
        """Unsubscribes from several channels in one request."""
        async with self._lock:
            old = [channel for channel in channels if channel in self._subscribed_to]
            if not old:
                return
            self._ensure_redis()
            self._ensure_receiver()
            await self._pubsub.unsubscribe(*old)
            self._subscribed_to.difference_update(old)


class _LoopLayer(RedisPubSubLoopLayer):
    def __init__(self, hosts=None, *args, **kwargs) -> None:
        super().__init__(hosts, *args, **kwargs)
        self._shards = [_Shard(host, self) for host in decode_hosts(hosts)]

    async def group_add_many(self, groups: list[str], channel: str) -> None:
        """Adds `channel` to several groups: group_add's bookkeeping, one request per shard."""
        if channel not in self.channels:
            raise RuntimeError("group_add_many() takes a channel that exists in this process")
        by_shard: dict[_Shard, list[str]] = {}
        for group in groups:
            group_channel = self._get_group_channel_name(group)
            self.groups.setdefault(group_channel, set()).add(channel)
            by_shard.setdefault(self._get_shard(group_channel), []).append(group_channel)
        for shard, names in by_shard.items():
            await shard.subscribe_many(names)

    async def group_discard_many(self, groups: list[str], channel: str) -> None:
        """Removes `channel` from several groups, unsubscribing from those left empty."""
        by_shard: dict[_Shard, list[str]] = {}
        for group in groups:
            group_channel = self._get_group_channel_name(group)
            channels = self.groups.get(group_channel)
            if not channels or channel not in channels:
                continue
            channels.discard(channel)
            if not channels:
                del self.groups[group_channel]
                by_shard.setdefault(self._get_shard(group_channel), []).append(group_channel)
        for shard, names in by_shard.items():
            await shard.unsubscribe_many(names)

    async def group_send_many(self, events: list[tuple[str, dict]]) -> None:
        """Publishes several (group, message) events, one pipeline per shard."""
        by_shard: dict[_Shard, list[tuple[str, bytes]]] = {}
        for group, message in events:
            channel = self._get_group_channel_name(group)
            packed = self.channel_layer.serialize(message)
            by_shard.setdefault(self._get_shard(channel), []).append((channel, packed))
        for shard, publishes in by_shard.items():
            await shard.publish_many(publishes)


class ChatPubSubLayer(RedisPubSubChannelLayer):
    """channels-redis' pub/sub layer with reconnect notifications (see module docstring)."""

    async def ready(self) -> None:
        """Waits until every subscriber connection is up; ConnectionError after a while."""
        shards = self._get_layer()._shards
        waiting = [shard.healthy.wait() for shard in shards if not shard.healthy.is_set()]
        if not waiting:
            return
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS):
                await asyncio.gather(*waiting)
        except TimeoutError:
            raise ConnectionError("the channel layer's subscriber connection is down") from None

    def _get_layer(self) -> RedisPubSubLoopLayer:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = _LoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
        return layer

    async def group_send_many(self, events: list[tuple[str, dict]]) -> None:
        """Publishes several (group, message) events in one round trip per shard, in order."""
        await self._get_layer().group_send_many(events)

    async def group_add_many(self, groups: list[str], channel: str) -> None:
        """Adds `channel` to several groups in one subscribe request per shard."""
        await self._get_layer().group_add_many(groups, channel)

    async def group_discard_many(self, groups: list[str], channel: str) -> None:
        """Removes `channel` from several groups in one unsubscribe request per shard."""
        await self._get_layer().group_discard_many(groups, channel)


async def group_send_many(layer, events: list[tuple[str, dict]]) -> None:
    """Sends (group, message) events in order: batched where the layer can, else one by one."""
    if not events:
        return
    batched = getattr(layer, "group_send_many", None)
    if batched is not None:
        await batched(events)
        return
    for group, message in events:
        await layer.group_send(group, message)


async def group_add_many(layer, groups: list[str], channel: str) -> None:
    """Adds `channel` to groups: in one request per shard where the layer can, else one by one."""
    if not groups:
        return
    many = getattr(layer, "group_add_many", None)
    if many is not None:
        await many(groups, channel)
        return
    for group in groups:
        await layer.group_add(group, channel)


async def group_discard_many(layer, groups: list[str], channel: str) -> None:
    """Removes `channel` from groups: one request per shard where the layer can, else one by one."""
    if not groups:
        return
    many = getattr(layer, "group_discard_many", None)
    if many is not None:
        await many(groups, channel)
        return
    for group in groups:
        await layer.group_discard(group, channel)
