// Invitations as the web client passes them around: a link whose fragment carries the one-time
// secret and the server key's fingerprint, `https://HOST/#invite=SECRET&fp=SHA256:…`, so that
// the first contact is pinned rather than trusted on first use (docs/PROTOCOL.md section 22,
// "Invitations": the same secret and fingerprint as `tlschat-invite:`, which names a TCP address
// instead). The fragment never reaches the server in an HTTP request; the page reads it, sends
// the secret in `hello` and takes it out of the address bar once the server welcomed it.

const SECRET = /^[A-Za-z0-9_-]{22,64}$/;
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
const MAX_FRAGMENT = 400;

/** A fragment that tries to be an invitation and is not; the text says what is wrong. */
export class InviteLinkError extends Error {}

/**
 * @param {string} hash `location.hash`, with or without its leading '#'
 * @returns {{secret: string, fingerprint: string} | null} null when the fragment names no
 *   invitation at all; an InviteLinkError when it names one badly
 */
export function parseInviteFragment(hash) {
  const text = hash.startsWith("#") ? hash.slice(1) : hash;
  if (!text) return null;
  if (text.length > MAX_FRAGMENT) {
    throw new InviteLinkError(`an invitation link is at most ${MAX_FRAGMENT} characters`);
  }
  /** @type {Map<string, string>} */
  const fields = new Map();
  for (const pair of text.split("&")) {
    const at = pair.indexOf("=");
    const name = at === -1 ? pair : pair.slice(0, at);
    let value;
    try {
      // Not URLSearchParams: it reads '+' as a space, and base64 fingerprints hold '+'.
      value = decodeURIComponent(at === -1 ? "" : pair.slice(at + 1));
    } catch {
      throw new InviteLinkError(`the invitation link's '${name}' is not well encoded`);
    }
    if (fields.has(name)) throw new InviteLinkError(`the invitation link names '${name}' twice`);
    fields.set(name, value);
  }
  if (!fields.has("invite") && !fields.has("fp")) return null;
  const secret = fields.get("invite") ?? "";
  const fingerprint = fields.get("fp") ?? "";
  const usage = "an invitation link ends in #invite=SECRET&fp=SHA256:FINGERPRINT";
  if (!SECRET.test(secret)) {
    throw new InviteLinkError(
      `${usage}; its secret is 22 to 64 of A-Z a-z 0-9 - _ (was the link cut short?)`,
    );
  }
  if (!FINGERPRINT.test(fingerprint)) {
    throw new InviteLinkError(`${usage}; its fingerprint is SHA256: and 43 base64 characters`);
  }
  return { secret, fingerprint };
}

/**
 * The link a new user opens to join with `secret`, pinned to `fingerprint`.
 * @param {string} origin the page's, e.g. `https://chat.example.org`
 * @param {string} secret
 * @param {string} fingerprint
 * @returns {string}
 */
export function inviteLink(origin, secret, fingerprint) {
  return `${origin}/#invite=${secret}&fp=${fingerprint}`;
}
