// One row of the message list as DOM: a line (its time, its mark, its nick, its text), a day
// separator, or the read marker. Text from the network only ever becomes textContent, never
// markup, and is neutralized first. Every mark says what it means in words (✓ with "verified",
// ✓✓ with "key verified by you", ✗ UNVERIFIED with the check that failed, 🔒 with "end-to-end
// encrypted"), so nothing is said by colour or symbol alone.

import {
  DELIVERED,
  MESSAGE_KINDS,
  PENDING,
  REFUSED,
  bodyLines,
  isMention,
  neutralize,
  shortFingerprint,
} from "./lines.js";

const NICK_COLOURS = 8;
// Before the text of lines that are not messages, so each kind reads apart without colour.
const EVENT_MARKS = Object.freeze({
  join: "→ ",
  leave: "← ",
  nick: "~ ",
  presence: "⇄ ",
  topic: "*** ",
  motd: "*** ",
  error: "Error: ",
});

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElement}
 */
function element(tag, className = "", text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

/**
 * @param {string} text
 * @returns {HTMLElement} text only a screen reader reads, beside a symbol it would misread
 */
function spoken(text) {
  return element("span", "visually-hidden", text);
}

/**
 * @param {string} fingerprint
 * @returns {string} a colour class from the key (FNV-1a), so an impostor's nick looks different
 */
export function nickClass(fingerprint) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < fingerprint.length; i++) {
    hash ^= fingerprint.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return `nick-c${hash % NICK_COLOURS}`;
}

/**
 * @param {number} timestamp seconds
 * @returns {HTMLElement}
 */
function timeOf(timestamp) {
  const node = /** @type {HTMLTimeElement} */ (element("time"));
  const date = new Date(timestamp * 1000);
  node.dateTime = date.toISOString();
  node.textContent = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  node.title = date.toLocaleString();
  return node;
}

/**
 * 🔒 on a line that came (or goes) through the end-to-end layer.
 * @param {import("./lines.js").Line} line
 * @returns {HTMLElement | null}
 */
export function lockOf(line) {
  if (!line.encrypted) return null;
  const lock = element("span", "lock");
  lock.dataset.testid = "encrypted-mark";
  lock.append("🔒", spoken(" end-to-end encrypted"));
  lock.title =
    "end-to-end encrypted: only the devices of the people in the conversation can read it";
  return lock;
}

/**
 * What a message line is worth: the delivery state of the user's own line, or whether a
 * received one verified (and if not, why); ✓✓ when its key is one the user verified with SAS.
 * A line waiting for its key claims nothing yet.
 * @param {import("./lines.js").Line} line
 * @returns {HTMLElement | null}
 */
export function markOf(line) {
  if (line.delivery) {
    const mark = element("span", "mark");
    mark.dataset.testid = "delivery-state";
    if (line.delivery === PENDING) {
      mark.classList.add("pending");
      mark.append("⋯", spoken(" sending"));
    } else if (line.delivery === DELIVERED) {
      mark.classList.add("delivered");
      mark.append("✓", spoken(" delivered"));
    } else if (line.delivery === REFUSED) {
      mark.classList.add("refused");
      mark.textContent = `✗ NOT SENT: ${neutralize(line.problem) || "refused"}`;
    }
    return mark;
  }
  if (line.verified === null) return null;
  const mark = element("span", "mark");
  mark.dataset.testid = "verification";
  if (line.verified && line.trusted) {
    mark.classList.add("verified", "trusted");
    mark.append("✓✓", spoken(" verified, by a key you verified"));
    mark.title = `signed by ${line.fingerprint}, which you verified by comparing emoji`;
  } else if (line.verified) {
    mark.classList.add("verified");
    mark.append("✓", spoken(" verified"));
    mark.title = `signed by ${line.fingerprint}`;
  } else {
    mark.classList.add("unverified");
    mark.textContent = `✗ UNVERIFIED${line.problem ? ` (${neutralize(line.problem)})` : ""}`;
  }
  return mark;
}

/**
 * A body of one or more lines: every line after the first indented, so that no body can show
 * a line that looks like a line of its own.
 * @param {string} text
 * @returns {HTMLElement}
 */
function bodyOf(text) {
  const body = element("span", "body");
  const [first, ...rest] = bodyLines(text);
  body.append(first);
  for (const more of rest) body.append(element("span", "more", more));
  return body;
}

/**
 * @param {import("./lines.js").Line} line
 * @param {string} ownNick
 * @returns {HTMLLIElement}
 */
function messageRow(line, ownNick) {
  const row = /** @type {HTMLLIElement} */ (element("li", "line message"));
  row.dataset.testid = "message-line";
  row.dataset.kind = line.kind;
  row.dataset.verified = line.verified === null ? "none" : String(line.verified);
  if (line.delivery) row.dataset.delivery = line.delivery;
  if (line.ref) row.dataset.ref = String(line.ref);
  if (line.id) row.dataset.id = line.id;
  row.dataset.encrypted = String(line.encrypted);
  if (line.trusted) row.dataset.trusted = "true";
  row.append(timeOf(line.timestamp));
  const lock = lockOf(line);
  if (lock !== null) row.append(lock);
  const mark = markOf(line);
  if (mark !== null) row.append(mark);
  const nick = neutralize(line.nick);
  const shown =
    line.kind === "action" ? `* ${nick}` : line.kind === "private" ? `*${nick}*` : `<${nick}>`;
  const nickNode = element("span", `nick ${nickClass(line.fingerprint)}`, shown);
  if (line.fingerprint) nickNode.title = `${nick} — key ${shortFingerprint(line.fingerprint)}…`;
  row.append(nickNode, bodyOf(line.text));
  if (isMention(line, ownNick)) {
    row.classList.add("mention");
    row.append(element("span", "note", "(mentions you)"));
  }
  if (line.note) row.append(element("span", "note", `(${neutralize(line.note)})`));
  else if (line.history) row.append(element("span", "note", "(history)"));
  if (line.keyChanged) {
    row.append(
      element(
        "span",
        "key-warning",
        `⚠ KEY CHANGED: ${nick} now signs with ${line.fingerprint}, not the key this nick had` +
          " before. Verify it before trusting this message!",
      ),
    );
  }
  return row;
}

/**
 * @param {import("./lines.js").Line} line
 * @returns {HTMLLIElement}
 */
function eventRow(line) {
  const row = /** @type {HTMLLIElement} */ (
    element("li", `line event ${line.kind === "error" ? "error" : ""}`)
  );
  row.dataset.testid = "event-line";
  row.dataset.kind = line.kind;
  if (line.ref) row.dataset.ref = String(line.ref);
  const mark = Object.hasOwn(EVENT_MARKS, line.kind)
    ? EVENT_MARKS[/** @type {"join"} */ (line.kind)]
    : "";
  row.append(timeOf(line.timestamp), bodyOf(mark + line.text));
  if (line.keyChanged) row.classList.add("warning");
  return row;
}

/**
 * @param {import("./buffers.js").Row} row
 * @param {string} ownNick
 * @returns {HTMLLIElement}
 */
export function renderRow(row, ownNick) {
  if (row.type === "day") {
    const day = /** @type {HTMLLIElement} */ (element("li", "day"));
    day.dataset.testid = "day-separator";
    const label = new Date(row.timestamp * 1000).toLocaleDateString([], {
      weekday: "long",
      year: "numeric",
      month: "long",
      day: "numeric",
    });
    day.append(element("span", "", label));
    return day;
  }
  if (row.type === "marker") {
    const marker = /** @type {HTMLLIElement} */ (
      element("li", "marker", "new since you last looked")
    );
    marker.dataset.testid = "read-marker";
    return marker;
  }
  return MESSAGE_KINDS.includes(row.line.kind) ? messageRow(row.line, ownNick) : eventRow(row.line);
}
