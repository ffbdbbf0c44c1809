"""The web client's files as the web port serves them (server/web_static.py), from a fixture
directory: types, the headers on every answer, 404 for anything else, no way out of the root."""

from __future__ import annotations

import http
from pathlib import Path

import pytest

from tlschat.server.web_static import StaticFiles, content_security_policy

HOST = "127.0.0.1:8080"
FILES = {
    "index.html": ("<!doctype html><title>tlschat</title>", "text/html; charset=utf-8"),
    "js/app.js": ("export const app = 1;\n", "text/javascript; charset=utf-8"),
    "css/app.css": ("body { margin: 0 }\n", "text/css; charset=utf-8"),
    "olm.wasm": ("\0asm\1\0\0\0", "application/wasm"),
    "icon.svg": ("<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
    "logo.png": ("\x89PNG\r\n", "image/png"),
    "manifest.json": ('{"name": "tlschat"}', "application/json"),
}


@pytest.fixture
def static(tmp_path: Path) -> StaticFiles:
    root = tmp_path / "static"
    for name, (text, _) in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text.encode("latin-1"))
    (root / "notes.txt").write_text("not a type the page uses\n")
    (root / ".hidden.js").write_text("secret\n")
    (root / "empty-dir.js").mkdir()
    (tmp_path / "secret.js").write_text("outside the root\n")
    (root / "escape.js").symlink_to(tmp_path / "secret.js")
    return StaticFiles(root)


def header(headers: list[tuple[str, str]], name: str) -> str:
    [value] = [value for key, value in headers if key == name]
    return value


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_file_is_served_with_its_type(static: StaticFiles, name: str) -> None:
    answer = static.answer(f"/{name}", HOST, None)
    text, content_type = FILES[name]
    assert answer.status == http.HTTPStatus.OK
    assert answer.body == text.encode("latin-1")
    assert header(answer.headers, "Content-Type") == content_type
    assert header(answer.headers, "Content-Length") == str(len(answer.body))


def test_the_root_is_index_html_and_a_query_is_ignored(static: StaticFiles) -> None:
    for target in ("/", "/?fresh=1", "/index.html#top"):
        answer = static.answer(target, HOST, None)
        assert answer.status == http.HTTPStatus.OK, target
        assert answer.body == FILES["index.html"][0].encode()


@pytest.mark.parametrize(
    "target",
    [
        "/missing.js",
        "/notes.txt",  # a type the page does not use
        "/.hidden.js",
        "/empty-dir.js",  # a directory, even with a served suffix
        "/js",
        "/js/",  # no listing
        "/../secret.js",
        "/js/../../secret.js",
        "/%2e%2e/secret.js",
        "/%2E%2E/%2e%2e/secret.js",
        "/js/..%2f..%2fsecret.js",
        "/./index.html",
        "//index.html",
        "/escape.js",  # a link out of the root
        "/js\\app.js",
        "/js%5capp.js",
        "/index.html%00.js",
        "/%ff.js",
        "index.html",
        "http://example.org/index.html",
    ],
)
def test_anything_else_is_not_found(static: StaticFiles, target: str) -> None:
    answer = static.answer(target, HOST, None)
    assert answer.status == http.HTTPStatus.NOT_FOUND, target
    assert answer.body == b"not found\n"
    assert header(answer.headers, "Content-Type") == "text/plain; charset=utf-8"
    assert header(answer.headers, "X-Content-Type-Options") == "nosniff"


@pytest.mark.parametrize("target", ["/", "/js/app.js", "/missing.js"])
def test_every_answer_carries_the_security_headers(static: StaticFiles, target: str) -> None:
    headers = static.answer(target, HOST, None).headers
    assert header(headers, "Content-Security-Policy") == (
        "default-src 'self'; "
        "connect-src 'self' ws://127.0.0.1:8080/ws wss://127.0.0.1:8080/ws; "
        "script-src 'self' 'wasm-unsafe-eval'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )
    assert header(headers, "X-Content-Type-Options") == "nosniff"
    assert header(headers, "Referrer-Policy") == "no-referrer"
    assert header(headers, "Cache-Control") == "no-cache"


@pytest.mark.parametrize(
    "host",
    [None, "", "evil.example; script-src *", "a b", "[::1", "x" * 300, "host:8080/ws"],
)
def test_a_host_header_that_is_no_host_adds_nothing_to_the_policy(host: str | None) -> None:
    policy = content_security_policy(host)
    assert "connect-src 'self';" in policy
    assert policy.count(";") == 5


def test_an_ipv6_host_is_named_in_the_policy() -> None:
    assert "connect-src 'self' ws://[::1]:8080/ws wss://[::1]:8080/ws;" in (
        content_security_policy("[::1]:8080")
    )


def test_a_file_the_browser_has_is_not_sent_again(static: StaticFiles) -> None:
    first = static.answer("/js/app.js", HOST, None)
    etag = header(first.headers, "ETag")
    again = static.answer("/js/app.js", HOST, etag)
    assert again.status == http.HTTPStatus.NOT_MODIFIED and again.body == b""
    assert header(again.headers, "Content-Security-Policy")
    changed = static.root / "js" / "app.js"
    changed.write_text("export const app = 2; // a new version\n")
    fresh = static.answer("/js/app.js", HOST, etag)
    assert fresh.status == http.HTTPStatus.OK and b"a new version" in fresh.body
