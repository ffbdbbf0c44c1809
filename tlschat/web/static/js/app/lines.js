// What the chat logic hands the page to show: one Line (a plain object) per thing the user sees,
// as the Python client's chat/lines.py has them, and the text rules every shown string follows.
// Nothing from the network reaches the page as markup: the view sets textContent only, and the
// characters that could fake a line of their own (controls, bidi overrides) become U+FFFD here.

/** The delivery states of a line the user sent (docs/PROTOCOL.md section 21, "Delivery"). */
export const PENDING = "pending";
export const DELIVERED = "delivered";
export const REFUSED = "refused";

export const MESSAGE_KINDS = Object.freeze(["message", "action", "private"]);
export const ACTION_PREFIX = "/me ";
/** The note of a /search result: a copy, shown where the user is, never filed under its room. */
export const FOUND = "found by /search";
/** The text of an end-to-end encrypted line that did not decrypt (`problem` says why). */
export const NOT_DECRYPTED = "(end-to-end encrypted; not decrypted)";
/** The text of a room line whose key has not come yet; the line replaces it when it comes. */
export const WAITING_FOR_KEY = "🔒 waiting for the key";

export const NICK_PATTERN = /^[A-Za-z0-9_\-[\]{}|^`]{1,24}$/;
// Check 7 of section 21 (minus newline, which splits lines), the line separators, lone surrogates.
const UNSAFE_TEXT =
  /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
// The characters a nick may hold: a mention is the nick not touching another of them.
const NICK_CHAR = "[\\p{L}\\p{N}_\\-\\[\\]{}|^`]";

/**
 * @typedef {{
 *   kind: string, timestamp: number, text: string, nick: string, fingerprint: string,
 *   room: string, verified: boolean | null, keyChanged: boolean, history: boolean,
 *   earlier: boolean, ref: number, delivery: string, problem: string, note: string, id: string,
 *   encrypted: boolean, trusted: boolean, count: number,
 * }} Line
 *   `timestamp`: seconds since the Unix epoch. `verified`: null for lines that carry no
 *   signature. `ref`: set on the user's own lines; a later line with the same ref replaces the
 *   earlier one (its delivery state changed). `id`: SENDER:COUNTER of a signed line.
 *   `encrypted`: the line came (or goes) through the end-to-end layer (🔒); one that did not
 *   decrypt says so in `problem`. `trusted`: verified, and its sender's key is one the user
 *   verified with SAS (✓✓). `count`: how many joins and leaves a summary line stands for.
 */

/**
 * @param {string} kind
 * @param {number} timestamp seconds
 * @param {string} text
 * @param {Partial<Line>} [fields]
 * @returns {Line}
 */
export function makeLine(kind, timestamp, text, fields = {}) {
  return {
    kind,
    timestamp,
    text,
    nick: "",
    fingerprint: "",
    room: "",
    verified: null,
    keyChanged: false,
    history: false,
    earlier: false,
    ref: 0,
    delivery: "",
    problem: "",
    note: "",
    id: "",
    encrypted: false,
    trusted: false,
    count: 0,
    ...fields,
  };
}

/** @param {string} text @param {number} now @returns {Line[]} */
export const notice = (text, now) => [makeLine("notice", now, text)];
/** @param {string} text @param {number} now @returns {Line[]} */
export const error = (text, now) => [makeLine("error", now, text)];

/**
 * @param {string} text
 * @returns {string} the text with every screen-rewriting character replaced by U+FFFD
 */
export function neutralize(text) {
  return text.replace(UNSAFE_TEXT, "\ufffd");
}

/**
 * @param {string} text a body, which may have several lines (section 21.1)
 * @returns {string[]} its lines, each neutralized: only a newline splits
 */
export function bodyLines(text) {
  return text.split("\n").map(neutralize);
}

/**
 * @param {string} sender
 * @param {number} counter
 * @returns {string} the line id of section 21.1
 */
export function lineId(sender, counter) {
  return `${sender}:${counter}`;
}

/**
 * @param {string} fingerprint `SHA256:AbCdEf12…`
 * @returns {string} its first 8 base64 characters: enough to tell keys apart at a glance
 */
export function shortFingerprint(fingerprint) {
  const digest = fingerprint.split(":")[1] ?? fingerprint;
  return digest.slice(0, 8);
}

/**
 * @param {number} seconds
 * @returns {string} '3 min', '2 h 5 min', '4 days': how long ago a late line was signed
 */
export function describeAge(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 3600) return `${Math.max(1, Math.floor(s / 60))} min`;
  if (s < 86400) {
    const hours = Math.floor(s / 3600);
    const minutes = Math.floor((s % 3600) / 60);
    return minutes ? `${hours} h ${minutes} min` : `${hours} h`;
  }
  const days = Math.floor(s / 86400);
  return days === 1 ? "1 day" : `${days} days`;
}

/**
 * A line the user sent: it has a delivery state (or, failing that, the user's nick).
 * @param {Line} line
 * @param {string} ownNick
 * @returns {boolean}
 */
export function isOwn(line, ownNick) {
  if (line.delivery) return true;
  return Boolean(ownNick) && line.nick.toLowerCase() === ownNick.toLowerCase();
}

/**
 * Someone else's message that names `ownNick` as a word.
 * @param {Line} line
 * @param {string} ownNick
 * @returns {boolean}
 */
export function isMention(line, ownNick) {
  if (!MESSAGE_KINDS.includes(line.kind) || !ownNick || isOwn(line, ownNick)) return false;
  const escaped = ownNick.replace(/[\\^$.*+?()[\]{}|-]/g, "\\$&");
  return new RegExp(`(?<!${NICK_CHAR})${escaped}(?!${NICK_CHAR})`, "iu").test(line.text);
}
