"""The cluster tests' own Redis: it starts, answers, and keeps its data across a stop or a crash
followed by a restart on the same port (the fault tests rely on all three)."""

from __future__ import annotations

from .harness import RedisServer


def test_redis_answers_and_keeps_data_across_stop_kill_and_restart(
    redis_server: RedisServer,
) -> None:
    port, url = redis_server.port, redis_server.url
    assert url == f"redis://127.0.0.1:{port}/0"
    with redis_server.client() as db:
        assert db.ping() is True
        db.set("written-before-stop", "kept")

    assert redis_server.stop() == 0, redis_server.describe()
    assert not redis_server.running and not redis_server.ping()
    redis_server.restart()
    assert redis_server.port == port
    with redis_server.client() as db:
        assert db.get("written-before-stop") == b"kept"
        db.set("written-before-kill", "kept too")

    # A crash straight after an acknowledged write loses nothing (appendfsync always).
    redis_server.kill()
    assert not redis_server.ping()
    redis_server.restart()
    with redis_server.client() as db:
        assert db.mget("written-before-stop", "written-before-kill") == [b"kept", b"kept too"]
    assert (redis_server.directory / "appendonlydir").is_dir(), redis_server.describe()
