"""``python -m benchmarks --encrypted``: the room fan-out in an end-to-end encrypted room next to
the same run in a plain room (issue 14, "Cost"), and what encryption costs a client.

Each run starts a fresh `tlschat server` (the benchmark's settings, plus ``--operator`` for a
key made here) and, for an encrypted room, connects as that operator and runs ``encrypt
#general`` before the members come (benchmarks.encrypted_load). The rooms (``--rooms``):

- ``plain``: the fan-out benchmark's own clients and signed lines, unchanged;
- ``e2e-lines``: every member a device; senders send Megolm lines (a new session every 100
  lines), the key shares left out: the relay of ciphertext alone;
- ``e2e``: the same, and each sender shares every session's key with the other member devices
  over Olm (``to_device``) before its first line, members acknowledging their inbox: what an
  encrypted room costs the server in all.

--quick  one run of each at N = 100; --full (default) medians of --repeat runs (3)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlschat.chat.envelope import SignedMessage
from tlschat.chat.frames import encode_frame, say_frame
from tlschat.e2e.megolm import RoomSender
from tlschat.protocol import IdentityKey

from . import e2e_cost, profiling
from .encrypted_load import ROOM, EncryptedRoom, encrypt_room, encrypted_say
from .load import body_text
from .runner import machine_busy_seconds, run_room
from .servers import HOST, Server, start_server

if TYPE_CHECKING:
    from .__main__ import Session

ROOMS = {
    "plain": "plain room, signed lines",
    "e2e-lines": "encrypted room, Megolm lines",
    "e2e": "encrypted room, lines + key shares",
}
MODES = ("fixed", "saturation")
# The comparison is a fraction of a microsecond per delivery: a run waits for the machine to be
# quiet (other processes under QUIET_CORES over QUIET_SPAN seconds, for at most QUIET_LIMIT), and
# is made again (at most ATTEMPTS times in all) when others used more than BUSY_CORES in a window.
QUIET_CORES = 0.15
QUIET_SPAN = 2.0
QUIET_LIMIT = 300.0
BUSY_CORES = 0.25
ATTEMPTS = 3
# The stock of lines signed (and encrypted) before the window is sized for this many deliveries
# per second: more than the plain benchmark's guess, which an encrypted room went past.
SATURATION_GUESS = 250_000.0


def frame_sizes() -> dict[str, int]:
    """Bytes of one ``say`` frame with the benchmark's body: signed, and encrypted."""
    identity = IdentityKey.generate("ed25519")
    network = IdentityKey.generate("ed25519").fingerprint
    now = time.time()
    body = body_text(0, 0)
    message = SignedMessage.create(
        identity, network, ROOM, int(now * 1_000_000), int(now * 1000), body
    )
    encrypted = encrypted_say(message, RoomSender.start(ROOM, now), now)
    return {
        "body_bytes": len(body),
        "plain_say_bytes": len(encode_frame(say_frame(message))),
        "encrypted_say_bytes": len(encode_frame(encrypted)),
    }


def start(session: Session, label: str, operator: IdentityKey) -> Server:
    return start_server(
        "tlschat",
        session.directory / label,
        session.tls,
        extra=("--operator", operator.fingerprint),
    )


def wait_machine_quiet() -> float:
    """Wait until the machine is quiet (nothing of ours runs now); the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < QUIET_LIMIT:
        before = machine_busy_seconds()
        time.sleep(QUIET_SPAN)
        if machine_busy_seconds() - before < QUIET_CORES * QUIET_SPAN:
            break
    return time.monotonic() - started


def run_quiet(session: Session, room: str, n: int, label: str) -> dict[str, dict[str, Any]]:
    """``run_one`` on a quiet machine, again if other processes used it during a window."""
    phases: dict[str, dict[str, Any]] = {}
    for attempt in range(1, ATTEMPTS + 1):
        waited = wait_machine_quiet()
        if waited > QUIET_SPAN * 1.5:
            session.log(f"waited {waited:.0f} s for the machine to be quiet")
        phases = run_one(session, room, n, f"{label}-{attempt}")
        busiest = max(result["other_util"] for result in phases.values())
        if busiest <= BUSY_CORES:
            break
        then = "again" if attempt < ATTEMPTS else "kept, as the last attempt"
        session.log(f"other processes used {busiest:.2f} cores during a window: {then}")
    return phases


def run_one(
    session: Session,
    room: str,
    n: int,
    label: str,
    modes: tuple[str, ...] = MODES,
    on_window: Callable[[Server, str, float], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """One fresh server, the room made encrypted unless ``plain``, one run of the fan-out;
    ``on_window`` is called as each timed window starts."""
    operator = IdentityKey.generate("ed25519")
    # Made before the server starts, so that workers forked later inherit every member's keys.
    members = None if room == "plain" else EncryptedRoom.create(n, share_keys=room == "e2e")
    server = start(session, label, operator)
    try:
        if members is not None:
            asyncio.run(encrypt_room(HOST, server.port, operator, server.fingerprint))
        return run_room(
            server,
            str(session.tls.cert_pem),
            n,
            session.seconds,
            warmup=session.warmup,
            modes=modes,
            on_window=None if on_window is None else partial(on_window, server),
            client_factory=None if members is None else members.client,
            saturation_guess=SATURATION_GUESS,
        )
    except (RuntimeError, OSError, TimeoutError, ValueError) as error:
        raise RuntimeError(f"{error}; the server's log ends:\n{server.log_tail(5)}") from error
    finally:
        server.stop()


def rows(data: dict[str, Any]) -> list[tuple[str, str, int, dict[str, Any]]]:
    """(room, mode, N, result) for each figure, in the table's order."""
    results = data.get("results", {})
    found = []
    for mode in MODES:
        for n in data.get("settings", {}).get("fanout_sizes", []):
            for room in ROOMS:
                result = results.get(f"fanout/{mode}/{n}/{room}")
                if isinstance(result, dict):
                    found.append((room, mode, n, result))
    return found


def _number(value: Any, digits: int = 0) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, int | float) else "-"


def table(data: dict[str, Any]) -> str:
    """Markdown: the fan-out rows, then the client's costs."""
    results = data.get("results", {})
    lines = [
        "| N | room | phase | delivered/s | per server CPU-s | CPU us/msg | vs plain "
        "| p50 ms | p99 ms | room keys received | limited by |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for room, mode, n, r in rows(data):
        plain = results.get(f"fanout/{mode}/{n}/plain", {}).get("cpu_us_per_msg")
        ours = r.get("cpu_us_per_msg")
        ratio = f"{ours / plain:.2f}" if ours and plain else "-"
        keys = r.get("client_counts", {}).get("room_keys_received")
        lines.append(
            f"| {n} | {ROOMS[room]} | {'light fixed load' if mode == 'fixed' else 'saturation'} "
            f"| {_number(r.get('delivered_per_s'))} | {_number(r.get('per_server_cpu_s'))} "
            f"| {_number(ours, 1)} | {ratio} | {_number(r.get('p50_ms'), 2)} "
            f"| {_number(r.get('p99_ms'), 2)} | {_number(keys)} | {r.get('limited_by', '')} |"
        )
    problems = [
        f"{key}: {r.get('errors')} errors ({r.get('first_error')}), "
        f"{r.get('lost_connections')} lost, {r.get('signed_late')} encrypted late"
        for key, r in results.items()
        if r.get("errors") or r.get("lost_connections") or r.get("signed_late")
    ]
    sizes = data.get("frame_sizes")
    if sizes:
        lines += [
            "",
            f"`say` frame with the {sizes['body_bytes']}-byte body: signed "
            f"{sizes['plain_say_bytes']} bytes, encrypted {sizes['encrypted_say_bytes']} bytes.",
        ]
    costs = data.get("client_costs")
    if costs:
        lines += ["", e2e_cost.markdown(costs)]
    lines += [f"PROBLEM: {problem}" for problem in problems]
    lines += [f"FAILED: {failure}" for failure in data.get("failures") or []]
    return "\n".join(lines)


def parse_rooms(text: str) -> list[str]:
    rooms = [room for room in text.split(",") if room]
    unknown = [room for room in rooms if room not in ROOMS]
    if unknown:
        raise SystemExit(f"unknown rooms {unknown}; choose from {', '.join(ROOMS)}")
    return rooms


def run(args: argparse.Namespace, session: Session) -> int:
    """The set for ``session`` (its --quick/--full, --repeat, --seconds); the exit code."""
    session.sizes = [int(x) for x in (args.n or "100").split(",")]
    rooms = parse_rooms(args.rooms or ",".join(ROOMS))
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    name = f"encrypted-{'full' if session.full else 'quick'}-{stamp}.json"
    session.out = args.out or session.out.with_name(name)
    session.data["mode"] = f"encrypted-{'full' if session.full else 'quick'}"
    session.data["settings"].update(
        fanout_sizes=session.sizes, rooms=rooms, servers=["tlschat"], idle=[]
    )
    session.data["frame_sizes"] = frame_sizes()
    session.log(f"results go to {session.out}")
    failures: list[str] = session.data.setdefault("failures", [])
    started = time.monotonic()
    try:
        wait_machine_quiet()
        session.log("client costs: 3,000 lines x 5 rounds per body size, a key for 100 devices")
        session.data["client_costs"] = e2e_cost.measure()
        session.save()
        for run_number in range(1, session.repeat + 1):
            for n in session.sizes:
                for room in rooms:
                    label = f"{room}-n{n}-run{run_number}"
                    session.log(f"run {run_number}: {ROOMS[room]}, fan-out N={n}")
                    try:
                        phases = run_quiet(session, room, n, label)
                    except (RuntimeError, OSError, TimeoutError, ValueError) as error:
                        session.log(f"{label} FAILED: {type(error).__name__}: {error}")
                        failures.append(f"{label}: {error}")
                        continue
                    for mode, result in phases.items():
                        session.record(f"fanout/{mode}/{n}/{room}", result)
    except KeyboardInterrupt:
        session.log("interrupted: the results so far are saved")
    finally:
        session.data["elapsed_s"] = time.monotonic() - started
        session.save()
        with contextlib.suppress(OSError):
            shutil.rmtree(session.directory)
    print()
    print(table(session.data))
    print(f"\nJSON: {session.out}")
    return 1 if failures else 0


def run_profile(args: argparse.Namespace, session: Session) -> int:
    """py-spy records the server through the saturation window of one room (``--rooms``, the
    first; default ``e2e``) at the first ``--n``; then its hot spots are printed."""
    room = parse_rooms(args.rooms or "e2e")[0]
    n = int((args.n or "100").split(",")[0])
    out: Path = args.profile
    recorders = []

    def record(server: Server, mode: str, duration: float) -> None:
        recorders.append(profiling.start_recording(server.pid, duration, out))

    try:
        result = run_one(session, room, n, f"profile-{room}", ("saturation",), record)
        for recorder in recorders:
            _, errors = recorder.communicate(timeout=session.seconds + 60)
            if recorder.returncode:
                print(errors.decode(errors="replace"))
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(session.directory)
    saturation = result["saturation"]
    print(
        f"{ROOMS[room]}, N={n}: delivered {saturation['delivered_per_s']:,.0f} msgs/s, "
        f"{saturation['cpu_us_per_msg']:.1f} CPU us per delivered message (under py-spy); "
        f"limited by {saturation['limited_by']}"
    )
    print(profiling.format_summary(profiling.summarize(out)))
    return 0
