// Deciding whether to trust the server's key (docs/PROTOCOL.md section 13; the terminal
// client's client/trust.py): the key this browser pinned for the page's origin, an invitation
// link's fingerprint, or the user's answer on first contact. A key that differs from the pin
// stops everything with the terminal client's loud warning, and the page never connects with it.

import { fingerprintsEqual } from "../protocol/identity.js";

/** The user said no to a new server's key: nothing of theirs was sent, not even who they are. */
export const NOT_TRUSTED = "Not trusted; nothing was sent.";

/**
 * @typedef {{kind: "trust", message: string, remember: boolean}
 *   | {kind: "ask", message: string}
 *   | {kind: "refused", message: string}
 *   | {kind: "changed", message: string}} TrustDecision
 *   `trust`: go on (`remember`: pin the key now); `ask`: a key never seen, for the user to
 *   accept; `refused`: an invitation for another key; `changed`: the pinned key differs.
 */

/**
 * @param {{host: string, presented: string, expected: string}} change
 * @returns {string} the terminal client's warning, with where this browser keeps its pin
 */
export function changedKeyWarning({ host, presented, expected }) {
  const bar = "@".repeat(59);
  return [
    bar,
    "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
    bar,
    "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!",
    "Someone could be eavesdropping on you right now (man-in-the-middle attack)!",
    "It is also possible that the server's key has just been changed.",
    `The fingerprint for the key sent by the remote host ${host} is`,
    `${presented}.`,
    `This browser pinned ${expected} for ${host}.`,
    `If you trust the new key, clear this site's stored data in your browser, then reload.`,
    `Host key for ${host} has changed; refusing to connect.`,
  ].join("\n");
}

/**
 * @param {{host: string, presented: string, pinned: string, invited: string}} facts
 *   `pinned`: the fingerprint stored for this origin ("" if none); `invited`: the invitation
 *   link's ("" if none)
 * @returns {TrustDecision}
 */
export function decideTrust({ host, presented, pinned, invited }) {
  if (pinned && !fingerprintsEqual(pinned, presented)) {
    return { kind: "changed", message: changedKeyWarning({ host, presented, expected: pinned }) };
  }
  if (invited && !fingerprintsEqual(invited, presented)) {
    return {
      kind: "refused",
      message:
        `Server key ${presented} does not match the fingerprint in the invitation ${invited};` +
        " refusing to connect (the invitation is for another server, or someone is in between).",
    };
  }
  if (pinned) {
    return {
      kind: "trust",
      message: `Server key ${presented} matches the pinned key`,
      remember: false,
    };
  }
  if (invited) {
    return {
      kind: "trust",
      message: `Server key ${presented} matches the invitation; remembering it for ${host}`,
      remember: true,
    };
  }
  return { kind: "ask", message: `New server ${host} with key fingerprint ${presented}` };
}
