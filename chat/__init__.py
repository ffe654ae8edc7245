"""The chat app: rooms, direct messages, presence and history over one websocket."""
