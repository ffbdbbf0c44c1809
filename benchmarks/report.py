"""The table, the issue's targets checked against the run, and the fan-out plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .servers import KINDS as ORDER
from .servers import TLSCHAT_KINDS as OURS


def _f(value: Any, digits: int = 0, width: int = 9) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}".rjust(width)
    return str(value).rjust(width)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _get(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = results.get(key)
    return value if isinstance(value, dict) else None


def _fanout_rows(results: dict[str, Any], mode: str) -> list[tuple[int, str, dict[str, Any]]]:
    """The fan-out figures of one phase that were measured: (N, server kind, figures)."""
    return [
        (n, kind, r)
        for n in _sizes(results)
        for kind in ORDER
        if (r := _get(results, f"fanout/{mode}/{n}/{kind}")) is not None
    ]


def _idle_rows(results: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
    return [
        (count, kind, r)
        for count in _idle_counts(results)
        for kind in ORDER
        if (r := _get(results, f"idle/{count}/{kind}")) is not None
    ]


def _handshake_rows(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(k, r) for k in ORDER if (r := _get(results, f"handshake/{k}")) is not None]


def _sizes(results: dict[str, Any]) -> list[int]:
    return sorted({int(key.split("/")[2]) for key in results if key.startswith("fanout/")})


def _idle_counts(results: dict[str, Any]) -> list[int]:
    return sorted({int(key.split("/")[1]) for key in results if key.startswith("idle/")})


def targets(data: dict[str, Any], server: str = "tlschat") -> list[dict[str, Any]]:
    """Each of the issue's targets for ``server``: what was measured, and met / missed /
    not measured."""
    results, floor = data.get("results", {}), data.get("crypto_floor", {})
    out: list[dict[str, Any]] = []

    def add(name: str, measured: str, met: bool | None) -> None:
        out.append({"target": name, "measured": measured, "met": met})

    hs, hs_ssl = _get(results, f"handshake/{server}"), _get(results, "handshake/ssl")
    ours = hs.get("per_server_cpu_s") if hs else None
    theirs = hs_ssl.get("per_server_cpu_s") if hs_ssl else None
    ratio = _ratio(ours, theirs)
    add(
        "handshakes per server CPU-s >= 1.5x the ssl relay",
        f"{ratio:.2f}x ({ours:,.0f} vs {theirs:,.0f})" if ratio else "not measured",
        None if ratio is None else ratio >= 1.5,
    )
    floor_ed = floor.get("floor_per_cpu_s_ed25519_client")
    share = _ratio(ours, floor_ed)
    add(
        "handshakes >= 75% of the crypto floor (Ed25519 clients)",
        f"{share:.0%} ({ours:,.0f} of {floor_ed:,.0f})" if share else "not measured",
        None if share is None else share >= 0.75,
    )
    for n in (100, 1000):
        mine = _get(results, f"fanout/saturation/{n}/{server}")
        ssl_run = _get(results, f"fanout/saturation/{n}/ssl")
        irc = _get(results, f"fanout/saturation/{n}/ngircd")
        cpu = mine.get("cpu_us_per_msg") if mine else None
        ssl_cpu = ssl_run.get("cpu_us_per_msg") if ssl_run else None
        irc_cpu = irc.get("cpu_us_per_msg") if irc else None
        r_ssl = _ratio(cpu, ssl_cpu)
        held = mine.get("connected") if mine else None
        note = f" ({server} held only {held} clients)" if held is not None and held < n else ""
        add(
            f"N={n}: CPU per delivered message <= 1/3 of ssl's (saturation)",
            f"{r_ssl:.2f}x ssl ({cpu:.1f} vs {ssl_cpu:.1f} us){note}" if r_ssl else "not measured",
            None if r_ssl is None else r_ssl <= 1 / 3,
        )
        r_irc = _ratio(cpu, irc_cpu)
        add(
            f"N={n}: CPU per delivered message <= ngircd's (saturation)",
            f"{r_irc:.2f}x ngircd ({cpu:.1f} vs {irc_cpu:.1f} us){note}"
            if r_irc
            else "not measured",
            None if r_irc is None else r_irc <= 1.0,
        )
    for n in _sizes(results):
        mine = _get(results, f"fanout/fixed/{n}/{server}")
        others = [_get(results, f"fanout/fixed/{n}/{k}") for k in ("ssl", "ngircd")]
        p99 = mine.get("p99_ms") if mine else None
        refs = [float(p) for o in others if o and (p := o.get("p99_ms")) is not None]
        if p99 is None or not refs:
            add(f"N={n}: light-load p99 <= ssl's and ngircd's", "not measured", None)
            continue
        add(
            f"N={n}: light-load p99 <= ssl's and ngircd's",
            f"{p99:.2f} ms vs best reference {min(refs):.2f} ms",
            p99 <= min(refs),
        )
    for count in _idle_counts(results):
        mine = _get(results, f"idle/{count}/{server}")
        kib = mine.get("kib_per_connection") if mine else None
        add(
            f"{count:,} idle: <= 13 KiB per authenticated connection",
            f"{kib:.1f} KiB" if kib else "not measured",
            None if kib is None else kib <= 13,
        )
    held = [
        r.get("connected", 0)
        for k, r in results.items()
        if k.startswith("idle/") and k.endswith(f"/{server}") and isinstance(r, dict)
    ]
    most = max(held, default=0)
    limit = data.get("settings", {}).get("file_limit")
    add(
        "20,000 idle connections held by one process",
        f"held {most:,}, the most this run tried (open-file limit here: {limit})"
        if most
        else "not measured",
        True if most >= 20000 else None,
    )
    return out


def table(data: dict[str, Any]) -> str:
    results = data.get("results", {})
    floor = data.get("crypto_floor", {})
    lines: list[str] = []
    machine = data.get("machine", {})
    settings = data.get("settings", {})
    lines.append(
        f"tlschat benchmarks ({data.get('mode')}): {machine.get('nproc')} x "
        f"{machine.get('cpu_model')}, Python {machine.get('python')}, cryptography "
        f"{machine.get('cryptography')}; runs per figure {settings.get('repeat')} (medians), "
        f"{settings.get('seconds')} s windows"
    )
    if floor:
        lines.append("")
        lines.append(
            "Crypto floor of one server handshake (CPU us): RSA-2048 PSS sign "
            f"{floor['rsa2048_pss_sign']:.0f}, X25519 keygen+exchange "
            f"{floor['x25519_keygen_exchange']:.0f}, HMAC {floor['hmac_sha256']:.1f} x5, "
            f"HKDF-Expand {floor['hkdf_expand']:.1f} x16, verify Ed25519 "
            f"{floor['ed25519_verify']:.0f} / RSA {floor['rsa2048_pss_verify']:.0f}"
        )
        lines.append(
            "  floor, handshakes per CPU-s: "
            f"{floor['floor_per_cpu_s_ed25519_client']:,.0f} (Ed25519 client), "
            f"{floor['floor_per_cpu_s_rsa_client']:,.0f} (RSA client), "
            f"{floor['floor_per_cpu_s_no_client_auth']:,.0f} (no client signature, as ssl)"
        )
    hs_rows = _handshake_rows(results)
    if hs_rows:
        ssl_rate = (_get(results, "handshake/ssl") or {}).get("per_server_cpu_s")
        lines += ["", "Full handshakes (new connection each, no resumption)"]
        lines.append(
            f"{'server':14} {'per wall-s':>10} {'per CPU-s':>10} {'vs ssl':>7} {'% floor':>8} "
            f"{'p50 ms':>7}  limited by"
        )
        for kind, r in hs_rows:
            per_cpu = r.get("per_server_cpu_s")
            floor_key = (
                "floor_per_cpu_s_ed25519_client"
                if kind in OURS
                else "floor_per_cpu_s_no_client_auth"
            )
            share = _ratio(per_cpu, floor.get(floor_key))
            lines.append(
                f"{kind:14} {_f(r.get('per_wall_s'), 0, 10)} {_f(per_cpu, 0, 10)} "
                f"{_f(_ratio(per_cpu, ssl_rate), 2, 7)} "
                f"{_f(share * 100 if share else None, 0, 7)}% {_f(r.get('p50_ms'), 1, 7)}  "
                f"{r.get('limited_by')}"
            )
    for mode, title in (
        ("fixed", "Room fan-out at a light fixed load"),
        ("saturation", "Room fan-out at saturation (each sender keeps its window in flight)"),
    ):
        rows = _fanout_rows(results, mode)
        if not rows:
            continue
        lines += ["", title]
        lines.append(
            f"{'N':>5} {'server':14} {'offered/s':>9} {'deliv./s':>9} {'per CPU-s':>9} "
            f"{'CPU us':>7} {'vs ssl':>6} {'p50 ms':>7} {'p99 ms':>7} {'acc./s':>7} "
            f"{'acc./CPU-s':>10}  limited by"
        )
        for n, kind, r in rows:
            ssl_cpu = (_get(results, f"fanout/{mode}/{n}/ssl") or {}).get("cpu_us_per_msg")
            lines.append(
                f"{n:>5} {kind:14} {_f(r.get('offered_deliveries_per_s'), 0)} "
                f"{_f(r.get('delivered_per_s'), 0)} {_f(r.get('per_server_cpu_s'), 0)} "
                f"{_f(r.get('cpu_us_per_msg'), 1, 7)} "
                f"{_f(_ratio(r.get('cpu_us_per_msg'), ssl_cpu), 2, 6)} "
                f"{_f(r.get('p50_ms'), 2, 7)} {_f(r.get('p99_ms'), 2, 7)} "
                f"{_f(r.get('accepted_per_s'), 0, 7)} "
                f"{_f(r.get('accepted_per_server_cpu_s'), 0, 10)}  {r.get('limited_by')}"
                + (f" [errors {r['errors']}: {r['first_error'][:60]}]" if r.get("errors") else "")
                + (f" [lost {r['lost_connections']}]" if r.get("lost_connections") else "")
                + (f" [signed late {r['signed_late']}]" if r.get("signed_late") else "")
                + (
                    f" [only {r.get('connected')} of {n} joined]"
                    if (r.get("connected") or 0) < n
                    else ""
                )
            )
    idle_rows = _idle_rows(results)
    if idle_rows:
        lines += ["", "Idle authenticated connections (server RSS growth over its baseline)"]
        lines.append(
            f"{'K':>6} {'server':14} {'held':>7} {'KiB/conn':>9} {'per GiB':>9} {'vs ssl':>7} "
            f"{'connect s':>9}"
        )
        for count, kind, r in idle_rows:
            ssl_kib = (_get(results, f"idle/{count}/ssl") or {}).get("kib_per_connection")
            lines.append(
                f"{count:>6} {kind:14} {_f(r.get('connected'), 0, 7)} "
                f"{_f(r.get('kib_per_connection'), 1)} {_f(r.get('connections_per_gib'), 0)} "
                f"{_f(_ratio(r.get('kib_per_connection'), ssl_kib), 3, 7)} "
                f"{_f(r.get('connect_s'), 1)}"
                + (f" [failed {r['failed']}: {r['first_error'][:60]}]" if r.get("failed") else "")
            )
    for ours in OURS:
        checked = targets(data, ours)
        if any(item["met"] is not None for item in checked):
            lines += ["", f"Issue targets: {ours}"]
            for item in checked:
                verdict = {True: "MET   ", False: "MISSED", None: "n/a   "}[item["met"]]
                lines.append(f"  {verdict} {item['target']}: {item['measured']}")
    return "\n".join(lines)


def plot(data: dict[str, Any], path: Path) -> None:
    """Delivered msgs/s at saturation and p99 latency against N, one line per server."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plot")
        return
    results = data.get("results", {})
    sizes = _sizes(results)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for kind in ORDER:
        xs, rates, p99_fixed, p99_sat = [], [], [], []
        for n in sizes:
            sat = _get(results, f"fanout/saturation/{n}/{kind}")
            fixed = _get(results, f"fanout/fixed/{n}/{kind}")
            if not sat:
                continue
            xs.append(n)
            rates.append(sat.get("delivered_per_s") or 0)
            p99_sat.append(sat.get("p99_ms"))
            p99_fixed.append(fixed.get("p99_ms") if fixed else None)
        if not xs:
            continue
        (line,) = left.plot(xs, rates, marker="o", label=kind)
        right.plot(xs, p99_fixed, marker="o", color=line.get_color(), label=f"{kind} light load")
        right.plot(
            xs,
            p99_sat,
            marker="x",
            linestyle="--",
            color=line.get_color(),
            label=f"{kind} saturated",
        )
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_xlabel("clients in the room (N)")
        axis.grid(True, which="both", alpha=0.3)
    left.set_yscale("log")
    left.set_ylabel("delivered messages/s at saturation")
    left.set_title("Fan-out throughput (one server process)")
    right.set_yscale("log")
    right.set_ylabel("p99 end-to-end latency (ms)")
    right.set_title("p99 latency")
    left.legend()
    right.legend(fontsize=7)
    machine = data.get("machine", {})
    figure.suptitle(
        f"{machine.get('nproc')} x {machine.get('cpu_model')}, load generator on the same machine",
        fontsize=9,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def markdown(data: dict[str, Any]) -> str:
    """The same figures as :func:`table`, as Markdown tables (for docs/BENCHMARKS.md)."""
    results, floor = data.get("results", {}), data.get("crypto_floor", {})
    out: list[str] = []

    def row(cells: list[str]) -> None:
        out.append("| " + " | ".join(cells) + " |")

    def num(value: Any, digits: int = 0) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    hs = _handshake_rows(results)
    if hs:
        ssl_rate = (_get(results, "handshake/ssl") or {}).get("per_server_cpu_s")
        row(["server", "handshakes/s", "per server CPU-s", "vs ssl", "% of floor", "limited by"])
        row(["---"] * 6)
        for kind, r in hs:
            per_cpu = r.get("per_server_cpu_s")
            key = "ed25519_client" if kind in OURS else "no_client_auth"
            share = _ratio(per_cpu, floor.get(f"floor_per_cpu_s_{key}"))
            row(
                [
                    kind,
                    num(r.get("per_wall_s")),
                    num(per_cpu),
                    num(_ratio(per_cpu, ssl_rate), 2),
                    "-" if share is None else f"{share:.0%}",
                    str(r.get("limited_by")),
                ]
            )
        out.append("")
    for mode in ("fixed", "saturation"):
        rows = _fanout_rows(results, mode)
        if not rows:
            continue
        out.append(f"**{'Light fixed load' if mode == 'fixed' else 'Saturation'}**")
        out.append("")
        row(
            [
                "N",
                "server",
                "delivered/s",
                "per server CPU-s",
                "CPU us/msg",
                "vs ssl",
                "p50 ms",
                "p99 ms",
                "accepted/s",
                "accepted per server CPU-s",
                "limited by",
            ]
        )
        row(["---"] * 11)
        for n, kind, r in rows:
            ssl_cpu = (_get(results, f"fanout/{mode}/{n}/ssl") or {}).get("cpu_us_per_msg")
            held = r.get("connected") or 0
            label = str(n) if held >= n else f"{n} ({held} joined)"
            row(
                [
                    label,
                    kind,
                    num(r.get("delivered_per_s")),
                    num(r.get("per_server_cpu_s")),
                    num(r.get("cpu_us_per_msg"), 1),
                    num(_ratio(r.get("cpu_us_per_msg"), ssl_cpu), 2),
                    num(r.get("p50_ms"), 2),
                    num(r.get("p99_ms"), 2),
                    num(r.get("accepted_per_s")),
                    num(r.get("accepted_per_server_cpu_s")),
                    str(r.get("limited_by")),
                ]
            )
        out.append("")
    idle = _idle_rows(results)
    if idle:
        row(["idle K", "server", "held", "KiB per connection", "per GiB", "vs ssl"])
        row(["---"] * 6)
        for count, kind, r in idle:
            ssl_kib = (_get(results, f"idle/{count}/ssl") or {}).get("kib_per_connection")
            row(
                [
                    f"{count:,}",
                    kind,
                    num(r.get("connected")),
                    num(r.get("kib_per_connection"), 1),
                    num(r.get("connections_per_gib")),
                    num(_ratio(r.get("kib_per_connection"), ssl_kib), 3),
                ]
            )
        out.append("")
    for ours in OURS:
        checked = targets(data, ours)
        if not any(item["met"] is not None for item in checked):
            continue
        out += [f"Targets for {ours}:", ""]
        row(["target", "measured", "verdict"])
        row(["---"] * 3)
        for item in checked:
            verdict = {True: "met", False: "**missed**", None: "not measured"}[item["met"]]
            row([item["target"], item["measured"], verdict])
        out.append("")
    return "\n".join(out)
