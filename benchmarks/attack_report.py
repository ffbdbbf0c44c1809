"""The attack benchmark's table: one row per figure, one column per tree, in Markdown (it reads
as well in a terminal as in docs/BENCHMARKS.md). It reads the results JSON, so ``--from`` can
print it again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .servers import CLOCK_TICKS

Row = tuple[str, str]
Run = dict[str, Any]


def _kib(count: float) -> str:
    return f"{count / 1024:,.0f} KiB"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _cpu_ms(value: float | None, count: int) -> str:
    """CPU ms per item, measured over ``count`` items in clock ticks: below one tick, a bound."""
    if value is None:
        return "-"
    tick = 1000 / CLOCK_TICKS / count
    return f"< {tick:.1f}" if value < tick else f"{value:.1f}"


def _server_rows(server: dict[str, Any]) -> list[Row]:
    start, peak = server["rss_start_mib"], server["rss_peak_mib"]
    rows = [
        ("server RSS, MiB: start → peak", f"{start:,.0f} → {peak:,.0f} (+{peak - start:,.0f})"),
        ("server CPU over the run", f"{server['cpu_s']:.1f} s of {server['seconds']:.1f} s"),
        (
            "CPU of the attack's clients / of other processes",
            f"{server['clients_cpu_s']:.1f} s / {server['other_cpu_s']:.1f} s",
        ),
        ("server log growth", f"{_kib(server['log_bytes'])}, {server['log_lines']:,} lines"),
        ("data directory growth", _kib(server["disk_growth_bytes"])),
    ]
    if not server["alive"]:
        rows.append(("server process", "DIED during the run"))
    return rows


def _legit_rows(legit: dict[str, Any]) -> list[Row]:
    login = (
        f"{legit['login_ms']:,.0f} ms"
        if legit["login_ms"] is not None
        else f"failed: {legit['login_error']}"
    )
    rows = [
        (
            "legitimate user's ping p50 / p99 / max, ms",
            f"{_ms(legit['ping_p50_ms'])} / {_ms(legit['ping_p99_ms'])} / "
            f"{_ms(legit['ping_max_ms'])} ({legit['pings']:,} pings, {legit['lost_pings']} lost)",
        ),
        (
            "presence notices to a bystander per s (peak in 1 s)",
            f"{legit['presence_per_s']:,.1f} ({legit['presence_peak_per_s']:,}); "
            f"{legit['presence_notices']:,} in all",
        ),
        ("a new user's login during the attack", login),
    ]
    if legit["disconnected"]:
        rows.append(("legitimate user's session", f"ended: {legit['disconnected']}"))
    return rows


def _parked(run: Run) -> list[Row]:
    f = run["figures"]
    return [
        (
            "attack sessions parked / dropped by the server",
            f"{f['parked']} of {f['connections']} / {f['dropped_by_server']}",
        )
    ]


def _flood(run: Run) -> list[Row]:
    f = run["figures"]
    return [
        ("part/join pairs sent", f"{f['pairs_sent']:,} in {f['seconds']:.0f} s"),
        (
            "what the server sent the attackers / what they sent",
            f"{f['bytes_received'] / 1e6:,.1f} MB / {f['bytes_sent'] / 1e6:,.2f} MB",
        ),
        ("attack sessions dropped and reconnected", f"{f['reconnects']}"),
    ]


def _outcomes(outcomes: dict[str, int]) -> str:
    shown = [f"{what} x{count:,}" for what, count in list(outcomes.items())[:3]]
    return "; ".join(shown) or "none"


def _slots(run: Run) -> list[Row]:
    f = run["figures"]
    rows: list[Row] = []
    for phase in f["phases"]:
        blocks = ", ".join(f"{block} {count}" for block, count in phase["held_per_block"].items())
        rows.append(
            (
                f"{phase['label']}: held at the end",
                f"{phase['held']:,} of {phase['attempts']:,} tried (per block: {blocks or '-'}; "
                f"per key at most {phase['held_per_key_max']})",
            )
        )
        rows.append((f"{phase['label']}: the others", _outcomes(phase["outcomes"])))
    no_hello = f["no_hello"]
    kept = no_hello["kept_s"]
    rows.append(
        (
            "a session that never says hello is closed after",
            f"{max(kept):.1f} s ({len(kept)} of {no_hello['connections']})"
            if kept
            else f"still open after {no_hello['watched_s']:.0f} s (0 of {no_hello['connections']})",
        )
    )
    return rows


def _replay(run: Run) -> list[Row]:
    f = run["figures"]
    return [
        (
            f"replays of one {f['hello_bytes']}-byte ClientHello: answered with a signature",
            f"{f['signed']:,} of {f['connections']:,} ({f['signed_per_s']:,.0f}/s)",
        ),
        ("replays refused with an alert / other", f"{f['refused']:,} / {f['other']:,}"),
    ]


def _keys(run: Run) -> list[Row]:
    f = run["figures"]
    rows: list[Row] = []
    for key in f["keys"]:
        name = f"RSA-{key['modulus_bits']}, {key['label']}"
        per_handshake = _cpu_ms(key["server_cpu_ms_per_handshake"], key["handshakes"])
        per_line = _cpu_ms(key["server_cpu_ms_per_message"], max(1, key["messages"]))
        rows.append((f"{name}: handshakes", key["outcome"]))
        rows.append(
            (f"{name}: server CPU ms per handshake / per line", f"{per_handshake} / {per_line}")
        )
    if f["server_log"]:
        rows.append(("the server's log about it", f["server_log"].strip()[:140]))
    return rows


def _history(run: Run) -> list[Row]:
    f, notes = run["figures"], run["notes"]
    server = run["server"] or {}
    bound = notes.get("history_max_bytes")
    each = server.get("database_bytes_each_second", [])
    return [
        (
            "lines stored (acknowledged) / sent / refused",
            f"{f['lines_stored']:,} / {f['lines_sent']:,} / {f['lines_refused']:,} by "
            f"{f['keys']} keys, {f['body_bytes']:,} bytes each",
        ),
        (
            "database peak: chat.db + WAL / chat.db alone / configured bound",
            f"{_kib(server.get('database_peak_bytes', 0))} / "
            f"{_kib(server.get('database_file_peak_bytes', 0))} / "
            + (_kib(bound) if bound else "none (no such setting)"),
        ),
        ("database every 5 s, KiB", " ".join(f"{size / 1024:,.0f}" for size in each[::5])),
        ("lines kept at the end", _count(notes.get("lines_kept"))),
    ]


def _files(run: Run) -> list[Row]:
    f = run["figures"]
    modes = ", ".join(f"{name} {mode}" for name, mode in f["modes"].items())
    return [
        (f"modes under umask {f['umask']}", modes),
        ("server key made 0644", f["key_0644"]),
    ]


ATTACK_ROWS: dict[str, Callable[[Run], list[Row]]] = {
    "parked": _parked,
    "flood": _flood,
    "slots": _slots,
    "replay": _replay,
    "keys": _keys,
    "history": _history,
    "files": _files,
}


def rows(attack: str, run: Run) -> list[Row]:
    if run.get("error"):
        return [("error", run["error"])]
    out = ATTACK_ROWS[attack](run)
    if run.get("server"):
        out += _server_rows(run["server"])
    if run.get("legit"):
        out += _legit_rows(run["legit"])
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(data: dict[str, Any]) -> str:
    runs = data.get("runs", [])
    machine = data.get("machine", {})
    lines = [
        f"tlschat under attack: {machine.get('nproc')} x {machine.get('cpu_model')}, "
        f"Python {machine.get('python')}, {machine.get('date_utc')} UTC; windows x "
        f"{data.get('settings', {}).get('seconds_scale')}",
        "",
        "| attack | figure | " + " | ".join(f"{r['label']} ({r['commit']})" for r in runs) + " |",
        "| --- | --- |" + " --- |" * len(runs),
    ]
    attacks = [a for a in ATTACK_ROWS if any(a in r["attacks"] for r in runs)]
    for attack in attacks:
        values: dict[str, dict[int, str]] = {}
        for column, run in enumerate(runs):
            if attack in run["attacks"]:
                for label, value in rows(attack, run["attacks"][attack]):
                    values.setdefault(label, {})[column] = value
        for label, by_column in values.items():
            cells = [by_column.get(column, "-") for column in range(len(runs))]
            lines.append("| " + " | ".join(_cell(c) for c in [attack, label, *cells]) + " |")
    return "\n".join(lines)
