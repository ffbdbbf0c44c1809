"""The web client's files, as the web port serves them (issue 17): what a request for a path
answers, with the headers that keep the page to its own code.

Only regular files under the static root with a known extension are served; anything else (a
directory, a hidden file, a path that leaves the root, through ``..`` or a link) is "404 Not
Found", and nothing lists a directory. Files are read when asked for, so what is served is what
is installed.
"""

from __future__ import annotations

import http
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

# Where the browser's WebSocket carries the chat's byte stream (server/web_transport.py).
WS_PATH = "/ws"
INDEX = "index.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}
# A Host header that is a host name or an address, with its port: only such a one is named in the
# policy (a header is the peer's text, and the policy must not be open to what it adds).
HOST_HEADER = re.compile(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?")
NOT_FOUND = b"not found\n"


def content_security_policy(host: str | None) -> str:
    """The page may load only its own files, run its own scripts (and WebAssembly), and talk
    only to its own server: nothing inline, no plugins, no <base>, in no frame."""
    connect = "'self'"
    if host is not None and HOST_HEADER.fullmatch(host):
        # 'self' covers the WebSocket in browsers that follow CSP 3; the URLs, the others.
        connect += f" ws://{host}{WS_PATH} wss://{host}{WS_PATH}"
    return "; ".join(
        (
            "default-src 'self'",
            f"connect-src {connect}",
            "script-src 'self' 'wasm-unsafe-eval'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )


def security_headers(host: str | None) -> list[tuple[str, str]]:
    """The headers of every answer of the web port, its 404s included."""
    return [
        ("Content-Security-Policy", content_security_policy(host)),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-cache"),
    ]


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: its status, its headers and its body."""

    status: http.HTTPStatus
    headers: list[tuple[str, str]]
    body: bytes


class StaticFiles:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def answer(self, target: str, host: str | None, if_none_match: str | None) -> Answer:
        """What a GET of ``target`` (the request's path and query) answers. ``host``: the Host
        header; ``if_none_match``: the ETag the browser has (then "304 Not Modified")."""
        headers = security_headers(host)
        path = self.find(target)
        try:
            if path is not None:
                status = path.stat()
                etag = f'"{status.st_size:x}-{status.st_mtime_ns:x}"'
                if if_none_match == etag:
                    return Answer(http.HTTPStatus.NOT_MODIFIED, [*headers, ("ETag", etag)], b"")
                body = path.read_bytes()
                headers += [("ETag", etag), ("Content-Type", CONTENT_TYPES[path.suffix])]
                headers += [("Content-Length", str(len(body)))]
                return Answer(http.HTTPStatus.OK, headers, body)
        except OSError:
            pass  # gone or unreadable since it was found: not there
        headers += [("Content-Type", "text/plain; charset=utf-8")]
        headers += [("Content-Length", str(len(NOT_FOUND)))]
        return Answer(http.HTTPStatus.NOT_FOUND, headers, NOT_FOUND)

    def find(self, target: str) -> Path | None:
        """The file ``target`` names under the root, or None: "/" is index.html."""
        path = target.partition("?")[0].partition("#")[0]
        try:
            path = urllib.parse.unquote(path, errors="strict")
        except UnicodeDecodeError:
            return None
        if not path.startswith("/") or "\\" in path or "\x00" in path:
            return None
        parts = path[1:].split("/") if path != "/" else [INDEX]
        # No empty, "." or ".." part, and no hidden file: only plain names, one directory deep
        # at a time. The check after resolve() also stops a link that leads out of the root.
        if any(not part or part.startswith(".") for part in parts):
            return None
        try:
            candidate = self.root.joinpath(*parts).resolve()
            if not candidate.is_relative_to(self.root) or candidate.suffix not in CONTENT_TYPES:
                return None
            return candidate if candidate.is_file() else None
        except (OSError, RuntimeError):  # a name too long, a loop of links
            return None
