"""The Redis pub/sub channel layer, told to report when its subscriber connection came back.

Pub/sub delivers at most once: whatever was published while this process's
subscriber connection was down is gone. redis-py reconnects and re-subscribes by
itself; this layer adds the one thing the chat needs on top, a callback on every
reconnect, so the process can ask its sockets to reconnect and `sync`.
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

logger = logging.getLogger(__name__)

_listeners: list[Callable[[], None]] = []


def on_layer_reconnect(listener: Callable[[], None]) -> None:
    """Calls `listener` whenever a subscriber connection of the layer was re-established."""
    _listeners.append(listener)


def _notify() -> None:
    logger.warning("channel layer reconnected to Redis: live frames may have been lost")
    for listener in _listeners:
        listener()


class _Shard(RedisSingleShardConnection):
    """A shard connection whose pub/sub client reports reconnects."""

    def _ensure_redis(self) -> None:
        fresh = self._redis is None
        super()._ensure_redis()
        if not fresh:
            return
        pubsub = self._pubsub
        resubscribe = pubsub.on_connect

        async def on_connect(pubsub_self, connection) -> None:
            await resubscribe(connection)
            _notify()

        # PubSub registers `self.on_connect` (weakly, so it must be a bound method) on
        # its connection after taking it, already connected, from the pool: it runs
        # only when that connection is re-established, never for the first one.
        pubsub.on_connect = types.MethodType(on_connect, pubsub)


class _LoopLayer(RedisPubSubLoopLayer):
    def __init__(self, hosts=None, *args, **kwargs) -> None:
        super().__init__(hosts, *args, **kwargs)
        self._shards = [_Shard(host, self) for host in decode_hosts(hosts)]

    async def group_send_many(self, events: list[tuple[str, dict]]) -> None:
        """Publishes several (group, message) events, one pipeline per shard."""
        by_shard: dict[_Shard, list[tuple[str, bytes]]] = {}
        for group, message in events:
            channel = self._get_group_channel_name(group)
            packed = self.channel_layer.serialize(message)
            by_shard.setdefault(self._get_shard(channel), []).append((channel, packed))
        for shard, publishes in by_shard.items():
            # The shard's lock orders publishes against each other, as group_send does.
            async with shard._lock:
                shard._ensure_redis()
                pipeline = shard._redis.pipeline(transaction=False)
                for channel, packed in publishes:
                    pipeline.publish(channel, packed)
                await pipeline.execute()


class ChatPubSubLayer(RedisPubSubChannelLayer):
    """channels-redis' pub/sub layer with reconnect notifications (see module docstring)."""

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
