"""Issue 19's fault-injection ("chaos") suite for the Redis cluster mode: real redis-server and
tlschat processes, faults by signals and by a TCP proxy in front of Redis, and a checker that
follows every line from the keyboard to every screen and to Redis (docs/CHAOS.md).
"""
