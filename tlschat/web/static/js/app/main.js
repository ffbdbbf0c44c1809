// Where the page starts: this browser's identity key (made once, kept in IndexedDB), its device
// for end-to-end encryption (made once, kept sealed in IndexedDB; none if the browser cannot
// hold one, and then the page says so), the nick (asked on first start), an invitation link's
// fingerprint and secret if the page was opened with one, then the session that connects to the
// server the page came from.

import { AppView } from "./app_view.js";
import { Vault } from "../e2e/vault.js";
import { ChatClient } from "./chat_client.js";
import { InviteLinkError, parseInviteFragment } from "./invite_link.js";
import { socketUrl } from "./link.js";
import { notice } from "./lines.js";
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
  let device = null;
  let noDevice = "";
  try {
    device = await Vault.openDevice(identity);
  } catch (problem) {
    console.error(problem);
    noDevice = problem instanceof Error ? problem.message : String(problem);
  }
  const nick = loadNick() || (await askNick());
  const chat = new ChatClient(identity, nick, location.origin, device?.crypto ?? null);
  if (invitation !== null) chat.invitation = invitation.secret;
  const view = new AppView(chat);
  const session = new Session(chat, {
    url: socketUrl(location),
    host: location.host,
    invited: invitation?.fingerprint ?? "",
    view,
    vault: device?.vault ?? null,
  });
  view.attach(session);
  if (noDevice) {
    const why = `End-to-end encryption is off in this page (${noDevice}): private messages and encrypted rooms are refused here.`;
    view.lines(notice(why, Date.now() / 1000));
  }
  session.start();
}

start().catch((problem) => {
  console.error(problem);
  showStop("broken", `The web client could not start: ${problem}`);
});
