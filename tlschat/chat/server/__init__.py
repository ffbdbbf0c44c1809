"""The server's chat logic, by concern; :class:`ChatServer` (in ``events``) is the whole of it.

Each layer adds to the one below: ``base`` (state and lookups), ``inbox`` (each device's inbox),
``devices`` (the key directory), ``hello`` (nicks, devices and joins), ``messages`` (chat lines),
``room_roles`` and ``room_commands`` (private rooms and room roles: who may join, see and talk in a
room, and its owner's and operators' commands; ``room_book`` holds every room's), ``encrypted``
(end-to-end encrypted lines and rooms), ``admin`` (the allowlist in force,
/reload, /allow, /disallow, /release), ``invitations`` (/invitation, /invitations, /revoke,
and the hello that brings an invitation), ``commands`` (the command table),
``sessions`` (what the glue calls per connection), ``events`` (the cluster's events, applied in
the log's order). The events are typed values: ``cluster_events`` and ``line_events`` define
them, ``event_codec`` writes and reads them (with ``typed_json``). ``model`` holds the settings,
sessions and shared texts; ``replies``, ``stored`` and ``durations`` the frames, stored lines and
durations.
"""
