"""``python -m benchmarks --quick | --full``: run the set, print the table, write the JSON.

--quick  one run each: handshakes, fan-out at N = 10 and 100, 1,000 idle connections
--full   medians of --repeat runs (3): handshakes, fan-out at N = 10, 100 and 1,000,
         1,000 and 10,000 idle connections
--cluster  instead: the fan-out against 1, 2 and 3 tlschat servers sharing a Redis, and one
         without it (benchmarks/cluster.py); with --quick N = 100, with --full N = 100 and 1,000
--encrypted  instead: the fan-out at N = 100 in an end-to-end encrypted room next to a plain
         one, and the client's cost per line (benchmarks/encrypted.py)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import crypto_floor, report
from .runner import run_handshakes, run_idle, run_room
from .servers import KINDS, TLSFiles, install_ngircd, make_tls_files, ngircd_path, raise_file_limit
from .servers import start_server as start

RESULTS = Path(__file__).resolve().parent / "results"


def machine_info() -> dict[str, Any]:
    import os
    import ssl

    import cryptography
    from cryptography.hazmat.backends.openssl.backend import backend

    model = ""
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "cryptography": cryptography.__version__,
        "cryptography_openssl": backend.openssl_version_text(),
        "python_ssl_openssl": ssl.OPENSSL_VERSION,
        "ngircd": ngircd_path() or "",
        "tlschat_tree": _tree_state(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


def _tree_state() -> str:
    """The commit measured, and whether tlschat/ had uncommitted changes (hash of the diff)."""
    import hashlib
    import subprocess

    from .servers import REPO

    def git(*command: str) -> str:
        result = subprocess.run(
            ["git", *command], cwd=REPO, capture_output=True, text=True, check=False
        )
        return result.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    diff = git("diff", "HEAD", "--", "tlschat")
    if not diff:
        return head
    return f"{head} + uncommitted tlschat/ changes {hashlib.sha256(diff.encode()).hexdigest()[:8]}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="the subset, about 2 minutes")
    mode.add_argument("--full", action="store_true", help="the full set (default)")
    parser.add_argument("--servers", default=",".join(KINDS), help="comma-separated subset")
    parser.add_argument(
        "--only",
        default="handshake,fanout,idle",
        help="comma-separated subset of handshake,fanout,idle",
    )
    parser.add_argument("--repeat", type=int, help="runs per figure (quick 1, full 3)")
    parser.add_argument("--n", help="fan-out room sizes, e.g. 10,100,1000")
    parser.add_argument("--idle", help="idle connection counts, e.g. 1000,10000")
    parser.add_argument("--seconds", type=float, help="timed window of each figure")
    parser.add_argument("--install-ngircd", action="store_true", help="apt-get it if missing")
    parser.add_argument("--out", type=Path, help="JSON file (default benchmarks/results/...)")
    parser.add_argument("--plot", type=Path, help="also draw the fan-out plot (PNG) here")
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="run nothing: print the table of this results JSON (and draw --plot from it)",
    )
    parser.add_argument("--markdown", action="store_true", help="with --from: Markdown tables")
    parser.add_argument(
        "--profile",
        type=Path,
        help="instead: py-spy record tlschat's server (speedscope JSON here) during a saturated "
        "fan-out at the first --n (default 100), then print its hot spots",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="instead: the fan-out against tlschat servers sharing a Redis (--broker), "
        "see benchmarks/cluster.py",
    )
    parser.add_argument(
        "--layouts",
        help="with --cluster: comma-separated subset of embedded,cluster-1,cluster-2,cluster-3",
    )
    parser.add_argument(
        "--encrypted",
        action="store_true",
        help="instead: the fan-out in an end-to-end encrypted room next to a plain one, and the "
        "client's encryption cost, see benchmarks/encrypted.py",
    )
    parser.add_argument(
        "--rooms",
        help="with --encrypted: comma-separated subset of plain,e2e-lines,e2e (with --profile: "
        "the room to record, default e2e)",
    )
    parser.add_argument(
        "--profile-handshakes",
        action="store_true",
        help="with --profile: record the handshake benchmark instead of the fan-out",
    )
    parser.add_argument(
        "--profile-light",
        action="store_true",
        help="with --profile: record the fan-out at its light fixed load instead of saturation",
    )
    return parser.parse_args(argv)


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Field-wise median of numeric fields; other fields from the first run; the runs kept."""
    if len(runs) == 1:
        return dict(runs[0], runs=1)
    merged: dict[str, Any] = {}
    for key, value in runs[0].items():
        values = [r.get(key) for r in runs]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        merged[key] = statistics.median(numbers) if len(numbers) == len(runs) else value
    merged["runs"] = len(runs)
    merged["limited_by_each"] = [r.get("limited_by") for r in runs]
    # The spread of the figures compared most closely (the encrypted room against the plain one).
    for key in ("cpu_us_per_msg", "other_util"):
        if key in runs[0]:
            merged[f"{key}_each"] = [r.get(key) for r in runs]
    return merged


class Session:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.full = not args.quick
        self.repeat = args.repeat or (3 if self.full else 1)
        self.seconds = args.seconds or (5.0 if self.full else 2.0)
        self.warmup = 1.0 if self.full else 0.5
        self.sizes = [
            int(x) for x in (args.n or ("10,100,1000" if self.full else "10,100")).split(",")
        ]
        self.idle = tuple(
            int(x) for x in (args.idle or ("1000,10000" if self.full else "1000")).split(",")
        )
        self.only = set(args.only.split(","))
        self.kinds = [k for k in args.servers.split(",") if k]
        self.directory = Path(tempfile.mkdtemp(prefix="tlschat-bench-"))
        self.tls: TLSFiles = make_tls_files(self.directory / "tls")
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        name = f"{'full' if self.full else 'quick'}-{stamp}.json"
        self.out = args.out or RESULTS / name
        self.raw: dict[str, list[dict[str, Any]]] = {}
        self.data: dict[str, Any] = {
            "mode": "full" if self.full else "quick",
            "machine": machine_info(),
            "settings": {
                "repeat": self.repeat,
                "seconds": self.seconds,
                "fanout_sizes": self.sizes,
                "idle": list(self.idle),
                "servers": self.kinds,
            },
            "crypto_floor": {},
            "results": {},
            "log": [],
        }

    def log(self, text: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {text}"
        print(line, flush=True)
        self.data["log"].append(line)

    def record(self, key: str, result: dict[str, Any]) -> None:
        self.raw.setdefault(key, []).append(result)
        self.data["results"][key] = median_of(self.raw[key])
        self.save()

    def save(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(self.data, indent=1, default=str))

    def server(self, kind: str, label: str) -> Any:
        return start(kind, self.directory / f"{kind}-{label}", self.tls)

    def run(self) -> None:
        cafile = str(self.tls.cert_pem)
        self.log(f"crypto floor ({'2' if self.full else '1'} s)")
        self.data["crypto_floor"] = crypto_floor.measure(2.0 if self.full else 1.0)
        self.save()
        for run in range(1, self.repeat + 1):
            for kind in self.kinds:
                if "handshake" in self.only and kind != "tcp":
                    self.log(f"run {run}: {kind} handshakes, {self.seconds:g} s")
                    with self.scenario(kind, f"hs{run}") as server:
                        if server is not None:
                            self.record(
                                f"handshake/{kind}",
                                run_handshakes(server, cafile, self.seconds, warmup=self.warmup),
                            )
                if "fanout" in self.only:
                    for n in self.sizes:
                        self.log(f"run {run}: {kind} fan-out N={n}")
                        with self.scenario(kind, f"room{n}-{run}") as server:
                            if server is None:
                                continue
                            phases = run_room(server, cafile, n, self.seconds, warmup=self.warmup)
                            for mode, result in phases.items():
                                self.record(f"fanout/{mode}/{n}/{kind}", result)
                if "idle" in self.only:
                    self.log(f"run {run}: {kind} idle {', '.join(map(str, self.idle))}")
                    with self.scenario(kind, f"idle{run}") as server:
                        stages = run_idle(server, cafile, self.idle) if server is not None else []
                        for stage in stages:
                            self.record(f"idle/{stage['connections']}/{kind}", stage)

    @contextlib.contextmanager
    def scenario(self, kind: str, label: str) -> Iterator[Any | None]:
        """A fresh server for one scenario; a failure is logged and the set goes on."""
        failures = self.data.setdefault("failures", [])
        try:
            server = self.server(kind, label)
        except (RuntimeError, OSError) as error:
            self.log(f"{kind} {label} FAILED to start: {error}")
            failures.append(f"{kind} {label}: {error}")
            yield None
            return
        try:
            yield server
        except (RuntimeError, OSError, TimeoutError, ValueError) as error:
            self.log(f"{kind} {label} FAILED: {type(error).__name__}: {error}")
            self.log(server.log_tail(5))
            failures.append(f"{kind} {label}: {error}")
        finally:
            server.stop()


def run_profile(args: argparse.Namespace) -> int:
    from .profiling import format_summary, start_recording, summarize

    n = int((args.n or "100").split(",")[0])
    seconds = args.seconds or 20.0
    directory = Path(tempfile.mkdtemp(prefix="tlschat-profile-"))
    tls = make_tls_files(directory / "tls")
    recorders = []

    def on_window(mode: str, duration: float) -> None:
        recorders.append(start_recording(server.pid, duration, args.profile))

    server = start("tlschat", directory / "tlschat", tls)
    try:
        if args.profile_handshakes:
            print(f"profiling tlschat's server (pid {server.pid}): handshakes, {seconds:g} s")
            result = run_handshakes(server, str(tls.cert_pem), seconds, on_window=on_window)
        else:
            mode = "fixed" if args.profile_light else "saturation"
            print(f"profiling tlschat's server (pid {server.pid}): N={n}, {mode}, {seconds:g} s")
            result = run_room(
                server, str(tls.cert_pem), n, seconds, modes=(mode,), on_window=on_window
            )[mode]
        for recorder in recorders:
            _, errors = recorder.communicate(timeout=seconds + 60)
            if recorder.returncode:
                print(errors.decode(errors="replace"))
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
    if args.profile_handshakes:
        print(
            f"{result['per_server_cpu_s']:,.0f} handshakes per server CPU-s, server "
            f"{result['server_util']:.0%} of a core (under py-spy); "
            f"limited by {result['limited_by']}"
        )
    else:
        print(
            f"delivered {result['delivered_per_s']:,.0f} msgs/s, "
            f"{result['cpu_us_per_msg']:.1f} CPU us per delivered message, "
            f"server {result['server_util']:.0%} of a core "
            f"(under py-spy); limited by {result['limited_by']}"
        )
    print(format_summary(summarize(args.profile)))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.source:
        data = json.loads(args.source.read_text())
        if str(data.get("mode", "")).startswith("cluster"):
            from . import cluster

            print(cluster.table(data))
            return 0
        if str(data.get("mode", "")).startswith("encrypted"):
            from . import encrypted

            print(encrypted.table(data))
            return 0
        print(report.markdown(data) if args.markdown else report.table(data))
        if args.plot:
            report.plot(data, args.plot)
        return 0
    soft = raise_file_limit()
    if args.profile and args.encrypted:
        from . import encrypted

        return encrypted.run_profile(args, Session(args))
    if args.profile:
        return run_profile(args)
    if args.cluster:
        from . import cluster

        return cluster.run(args, Session(args))
    if args.encrypted:
        from . import encrypted

        return encrypted.run(args, Session(args))
    if args.install_ngircd:
        install_ngircd()
    session = Session(args)
    session.data["settings"]["file_limit"] = soft
    if "ngircd" in session.kinds and not ngircd_path():
        session.log("ngircd is not installed: skipped (`make bench` installs it as root)")
        session.kinds.remove("ngircd")
        session.data["settings"]["servers"] = session.kinds
    session.log(f"file limit {soft}; results go to {session.out}")
    started = time.monotonic()
    try:
        session.run()
    except KeyboardInterrupt:
        session.log("interrupted: the results so far are saved")
    finally:
        session.data["elapsed_s"] = time.monotonic() - started
        session.save()
        shutil.rmtree(session.directory, ignore_errors=True)
    print()
    print(report.table(session.data))
    print(f"\nJSON: {session.out}")
    if args.plot:
        report.plot(session.data, args.plot)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
