"""Desktop notifications in the browser: permission is asked only when the user presses the
button for it, never before (not even when a mention comes in); once granted, a line that
mentions the user while the tab is hidden makes one notification, a line that does not mention
them makes none, and a mention while the tab is shown makes none either."""

from __future__ import annotations

from typing import Any

from .chromium import require

require()

from playwright.sync_api import expect  # noqa: E402

from tests.e2e.harness import HOST, Harness  # noqa: E402

from .web import NewContext, WebPage, free_ports, web_server  # noqa: E402

# Headless Chromium shows no permission prompt (it denies at once), so the page's request goes
# through a binding where the test answers "Allow" by granting the permission to the context,
# then on to the browser's own requestPermission. The calls, and every Notification made (and
# whether the browser showed it), are recorded before any of the page's scripts runs.
RECORD_NOTIFICATIONS = """
window.__permissionRequests = 0;
window.__notifications = [];
const RealNotification = window.Notification;
const requestPermission = RealNotification.requestPermission.bind(RealNotification);
RealNotification.requestPermission = async () => {
  window.__permissionRequests += 1;
  await window.__answerPermissionPrompt();
  return requestPermission();
};
window.Notification = class extends RealNotification {
  constructor(title, options = {}) {
    super(title, options);
    const made = { title, body: options.body ?? "", shown: false };
    this.addEventListener("show", () => {
      made.shown = true;
    });
    window.__notifications.push(made);
  }
};
"""
# The page is told the tab is hidden (or shown again) as a browser tells it: the document's
# visibility changes and a visibilitychange event is fired.
SET_HIDDEN = """
(hidden) => {
  if (hidden) {
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    Object.defineProperty(document, "hidden", { value: true, configurable: true });
  } else {
    delete document.visibilityState;
    delete document.hidden;
  }
  document.dispatchEvent(new Event("visibilitychange"));
  return [document.visibilityState, document.hidden];
}
"""
NOTIFICATIONS_ON = "Desktop notifications are on for mentions and private lines"


def set_hidden(page: WebPage, hidden: bool) -> None:
    state = page.page.evaluate(SET_HIDDEN, hidden)
    assert state == (["hidden", True] if hidden else ["visible", False]), state


def permission_requests(page: WebPage) -> int:
    requests = page.page.evaluate("window.__permissionRequests")
    assert isinstance(requests, int), requests
    return requests


def notifications(page: WebPage) -> list[dict[str, Any]]:
    made = page.page.evaluate("window.__notifications")
    assert isinstance(made, list), made
    return made


def test_permission_only_on_the_button_and_one_notification_per_hidden_mention(
    harness: Harness, new_context: NewContext
) -> None:
    port, web_port = free_ports(2)
    server = web_server(harness, harness.root / "data", port, web_port)
    carol = harness.joined_client("carol", port)
    context = new_context()
    origin = f"http://{HOST}:{web_port}"
    prompts: list[str] = []

    def answer_prompt(source: dict[str, Any]) -> None:
        prompts.append(source["page"].url)
        context.grant_permissions(["notifications"], origin=origin)

    context.expose_binding("__answerPermissionPrompt", answer_prompt)
    alice = WebPage(context, web_port)
    alice.page.add_init_script(RECORD_NOTIFICATIONS)
    alice.join("alice", server.fingerprint)
    button = alice.by("notify-button")
    expect(button).to_be_enabled()
    expect(button).to_have_text("Notify me of mentions when this tab is hidden")

    # Before the button: a mention while the tab is hidden asks nothing and shows nothing.
    set_hidden(alice, True)
    carol.send("alice: are you there? 1a1a")
    alice.expect_verified("carol", "alice: are you there? 1a1a")
    expect(alice.line("alice: are you there? 1a1a")).to_contain_text("(mentions you)")
    assert permission_requests(alice) == 0
    assert notifications(alice) == []
    assert alice.page.evaluate("Notification.permission") == "default"

    button.click()
    expect(button).to_have_text(NOTIFICATIONS_ON)
    expect(button).to_be_disabled()
    assert permission_requests(alice) == 1
    assert len(prompts) == 1  # the browser's own request, answered once

    carol.send("no malice meant, nobody named here 2b2b")
    alice.expect_verified("carol", "no malice meant, nobody named here 2b2b")
    assert notifications(alice) == []

    # The page makes a line's notification as it files the line, before drawing it: once the
    # line shows, its notification exists; the later line shows that nothing more came of it.
    mention = "ping alice, the build is green 3c3c"
    carol.send(mention)
    alice.expect_verified("carol", mention)
    carol.send("a line for the room 4d4d")
    alice.expect_verified("carol", "a line for the room 4d4d")
    alice.page.wait_for_function("window.__notifications.every((made) => made.shown)", polling=100)
    assert notifications(alice) == [{"title": "carol in #general", "body": mention, "shown": True}]

    set_hidden(alice, False)
    carol.send("alice, back already? 5e5e")
    alice.expect_verified("carol", "alice, back already? 5e5e")
    expect(alice.line("alice, back already? 5e5e")).to_contain_text("(mentions you)")
    assert len(notifications(alice)) == 1
    assert permission_requests(alice) == 1
    assert alice.problems() == [], alice.problems()
