// Where the page starts: this browser's identity key (made once, kept in IndexedDB), the nick
// (asked on first start), an invitation link's fingerprint and secret if the page was opened
// with one, then the session that connects to the server the page came from.

import { AppView } from "./app_view.js";
import { ChatClient } from "./chat_client.js";
import { InviteLinkError, parseInviteFragment } from "./invite_link.js";
import { socketUrl } from "./link.js";
import { Session } from "./session.js";
import { loadIdentity, loadNick } from "./store.js";
import { askNick, showStop } from "./view_dialogs.js";

async function start() {
  let invitation;
  try {
    invitation = parseInviteFragment(location.hash);
  } catch (problem) {
    if (!(problem instanceof InviteLinkError)) throw problem;
    // An invitation is there to spare the user the first-contact question: a broken one must
    // not quietly fall back to asking it.
    showStop(
      "broken",
      `This invitation link is broken: ${problem.message}. Ask for the link again.`,
    );
    return;
  }
  let identity;
  try {
    identity = await loadIdentity();
  } catch (problem) {
    showStop(
      "broken",
      `This browser cannot keep a signing key for this site (${problem}). A browser with` +
        " Ed25519 in WebCrypto and IndexedDB allowed (not a private window that forbids it) is needed.",
    );
    return;
  }
  const nick = loadNick() || (await askNick());
  const chat = new ChatClient(identity, nick, location.origin);
  if (invitation !== null) chat.invitation = invitation.secret;
  const view = new AppView(chat);
  const session = new Session(chat, {
    url: socketUrl(location),
    host: location.host,
    invited: invitation?.fingerprint ?? "",
    view,
  });
  view.attach(session);
  session.start();
}

start().catch((problem) => {
  console.error(problem);
  showStop("broken", `The web client could not start: ${problem}`);
});
