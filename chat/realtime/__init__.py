"""The real-time plumbing: publishing frames to groups, each process's fan-out to its
sockets, the sockets' outboxes, the channel layer and the loops that keep them alive.

It writes frames and never learns what they mean: no module here imports a feature.
"""
