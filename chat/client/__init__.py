"""The terminal client: `python -m chat.client`, a line mode for pipes and a full-screen mode.

It speaks the public websocket protocol only and never imports Django, so it runs
anywhere `websockets` (and, for `--tui`, `textual`) is installed.
"""
