"""The server's chat logic, by concern; :class:`ChatServer` (in ``events``) is the whole of it.

Each layer adds to the one below: ``base`` (state and lookups), ``hello`` (nicks and joins),
``messages`` (chat lines), ``commands`` (the command table), ``sessions`` (what the glue calls per
connection), ``events`` (the cluster's events, applied in the log's order). ``model`` holds the
settings, sessions and shared texts; ``replies`` and ``durations`` the frames and durations.
"""
