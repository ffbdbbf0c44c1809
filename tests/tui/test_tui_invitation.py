"""The full-screen client joins with an invitation (`--invite`): no trust dialog, the key pinned
from the invitation and remembered in known_hosts, and the key admitted by an allowlist server."""

from __future__ import annotations

import asyncio

from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.invitation import parse_invitation
from tlschat.chat.server.invitations import ADMITTED
from tlschat.client.home_files import open_device
from tlschat.client.settings import ClientSettings
from tlschat.client.tui import ChatApp
from tlschat.client.view import SERVER_BUFFER
from tlschat.protocol.identity import IdentityKey

from ..e2e.harness import Harness
from ..e2e.test_invitations_e2e import allowlist_server, cli_invitation
from .pilot import SIZE, modal, until


def test_the_full_screen_client_joins_with_an_invitation_without_a_question(
    harness: Harness,
) -> None:
    operator = IdentityKey.generate("ed25519").fingerprint
    server = allowlist_server(harness, operator)
    invitation = parse_invitation(cli_invitation(harness, server))
    home = harness.root / "homes" / "newbie"
    identity, _ = IdentityKey.load_or_create(home / "identity.pem", "ed25519")
    settings = ClientSettings(
        home=home,
        host=invitation.host,
        port=invitation.port,
        nick="newbie",
        bell=False,
        invitation=invitation,
    )
    app = ChatApp(settings, identity, ChatClient(identity, "newbie", open_device(home, identity)))

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await until(
                pilot,
                lambda: modal(app) is not None or "#general" in app.chat.rooms,
                "the welcome (or a question)",
            )
            assert modal(app) is None
            # Told in the server's buffer, with the welcome.
            server_lines = app.buffers.get(SERVER_BUFFER).lines
            await until(
                pilot, lambda: any(ADMITTED in line.text for line in server_lines), "admission"
            )
            assert app.trust_message == (
                f"[KNOWN_HOSTS] Server key {server.fingerprint} matches the invitation; "
                f"remembering it for 127.0.0.1:{server.port}"
            )
            await pilot.press("ctrl+q")
            await until(pilot, lambda: app.return_code is not None, "a clean exit")
        assert app.return_value == 0

    asyncio.run(scenario())
    assert (home / "known_hosts").read_text().splitlines() == [
        f"127.0.0.1:{server.port} {server.fingerprint}"
    ]
