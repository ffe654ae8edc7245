"""Messages: storing and ordering them, batching sends, reading them back, and the
changes a message can go through.
"""
