"""The benchmark of the chat site against a naive Channels baseline and a raw websockets server.

`make bench` runs bench/run.py; docs/performance.md explains the method and the figures.
"""
