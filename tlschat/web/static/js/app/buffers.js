// What the page shows, as plain objects (a port of the full-screen client's Buffers in
// client/view.py): which buffer each line goes to (a room, a private conversation `@nick`, or
// the server buffer), unread counts and mentions, the read marker, and the rows of a buffer with
// a day separator wherever the day changes. No DOM here: the view draws what this decides.

import { FOUND, MESSAGE_KINDS, isMention, isOwn } from "./lines.js";

export const SERVER_BUFFER = "server";
// Lines kept per buffer: a tab left open on a busy room for days stays light. The oldest go.
export const MAX_BUFFER_LINES = 5000;

/** @typedef {import("./lines.js").Line} Line */
/**
 * @typedef {{name: string, lines: Line[], unread: number, mentioned: boolean, readUpto: number}}
 *   Buffer `readUpto`: index of the first line not seen yet, where the read marker goes.
 * @typedef {{type: "line", line: Line} | {type: "day", key: string, timestamp: number}
 *   | {type: "marker"}} Row
 */

/** @param {string} name @returns {Buffer} */
const newBuffer = (name) => ({ name, lines: [], unread: 0, mentioned: false, readUpto: 0 });

/**
 * @param {number} timestamp seconds
 * @returns {string} the local calendar day, as a key that changes exactly when the day does
 */
export function localDay(timestamp) {
  const date = new Date(timestamp * 1000);
  return `${date.getFullYear()}-${date.getMonth() + 1}-${date.getDate()}`;
}

export class Buffers {
  constructor() {
    /** @type {Map<string, Buffer>} */
    this.buffers = new Map([[SERVER_BUFFER, newBuffer(SERVER_BUFFER)]]);
    this.current = SERVER_BUFFER;
    // Where each of the user's own lines (by ref) was filed, for its later states.
    /** @type {Map<number, string>} */
    this._refs = new Map();
  }

  /** @returns {string[]} the server buffer, then rooms, then conversations, each sorted */
  names() {
    const all = [...this.buffers.keys()];
    const sorted = (/** @type {string} */ prefix) =>
      all
        .filter((n) => n.startsWith(prefix))
        .sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
    return [SERVER_BUFFER, ...sorted("#"), ...sorted("@")];
  }

  /** @param {string} name @returns {Buffer} */
  get(name) {
    let buffer = this.buffers.get(name);
    if (buffer === undefined) {
      buffer = newBuffer(name);
      this.buffers.set(name, buffer);
    }
    return buffer;
  }

  /**
   * @param {string} nick
   * @returns {string} the conversation with `nick` (any case), or a new name
   */
  findPrivate(nick) {
    const folded = nick.toLowerCase();
    for (const name of this.buffers.keys()) {
      if (name.startsWith("@") && name.slice(1).toLowerCase() === folded) return name;
    }
    return `@${nick}`;
  }

  /**
   * The buffer for `line`: its room, its private conversation (`@nick` in the user's own lines,
   * the sender's nick in received ones), or the current buffer.
   * @param {Line} line
   * @returns {string}
   */
  route(line) {
    if (line.note === FOUND) return this.current;
    if (MESSAGE_KINDS.includes(line.kind)) {
      if (line.room.startsWith("@") && line.room.length > 1)
        return this.findPrivate(line.room.slice(1));
      if (!line.room && !line.delivery && line.nick) return this.findPrivate(line.nick);
    }
    if (line.room.startsWith("#")) return line.room;
    return this.current;
  }

  /**
   * File what the chat logic returned, in order: a line with a ref shown already replaces it
   * (a later delivery state), lines of a page of older history go above the lines shown.
   * @param {Line[]} lines
   * @param {string} ownNick
   * @returns {{touched: Set<string>, rings: Line[]}} the buffers that changed, and the lines
   *   that should ring (a mention, or a private line from someone else, not history)
   */
  file(lines, ownNick) {
    const touched = new Set();
    /** @type {Line[]} */
    const rings = [];
    /** @type {Map<string, Line[]>} */
    const pages = new Map();
    for (const line of lines) {
      if (line.earlier) {
        const name = this.route(line);
        pages.set(name, [...(pages.get(name) ?? []), line]);
        continue;
      }
      const { name, ring } = this.add(line, ownNick);
      touched.add(name);
      if (ring) rings.push(line);
    }
    for (const [name, page] of pages) {
      this.prepend(name, page);
      touched.add(name);
    }
    return { touched, rings };
  }

  /**
   * @param {Line} line
   * @param {string} ownNick
   * @returns {{name: string, ring: boolean}}
   */
  add(line, ownNick) {
    const replaced = this._replace(line);
    if (replaced !== null) return { name: replaced, ring: false };
    let name = this.route(line);
    // Its buffer was closed (a room left): the outcome still shows, where the user is.
    if (line.ref && this._refs.has(line.ref)) name = this.current;
    const buffer = this.get(name);
    buffer.lines.push(line);
    if (line.ref && line.note !== FOUND) this._refs.set(line.ref, name);
    this._trim(buffer);
    const own = isOwn(line, ownNick);
    const mention = isMention(line, ownNick);
    const isPrivate =
      MESSAGE_KINDS.includes(line.kind) && name.startsWith("@") && !own && !line.history;
    if (name !== this.current) {
      if (MESSAGE_KINDS.includes(line.kind) && !own) buffer.unread += 1;
      else if (own && buffer.readUpto === buffer.lines.length - 1)
        buffer.readUpto = buffer.lines.length;
      buffer.mentioned = buffer.mentioned || ((mention || isPrivate) && !line.history);
    } else {
      buffer.readUpto = buffer.lines.length;
    }
    return { name, ring: (mention || isPrivate) && !line.history };
  }

  /**
   * @param {Line} line
   * @returns {string | null} the buffer where its earlier version was replaced
   */
  _replace(line) {
    const name = line.ref ? this._refs.get(line.ref) : undefined;
    const buffer = name === undefined ? undefined : this.buffers.get(name);
    if (name === undefined || buffer === undefined) return null;
    for (let index = buffer.lines.length - 1; index >= 0; index--) {
      if (buffer.lines[index].ref === line.ref) {
        buffer.lines[index] = line;
        return name;
      }
    }
    return null;
  }

  /** @param {Buffer} buffer */
  _trim(buffer) {
    const excess = buffer.lines.length - MAX_BUFFER_LINES;
    if (excess <= 0) return;
    buffer.lines.splice(0, excess);
    buffer.readUpto = Math.max(0, buffer.readUpto - excess);
  }

  /**
   * Make `name` current; its read marker stays where the user last left off.
   * @param {string} name
   * @returns {Buffer}
   */
  switch(name) {
    const old = this.buffers.get(this.current);
    if (old !== undefined) old.readUpto = old.lines.length;
    const buffer = this.get(name);
    this.current = name;
    buffer.unread = 0;
    buffer.mentioned = false;
    return buffer;
  }

  /** @param {number} offset @returns {string} the buffer `offset` places from the current one */
  step(offset) {
    const names = this.names();
    const index = Math.max(0, names.indexOf(this.current));
    return names[(((index + offset) % names.length) + names.length) % names.length];
  }

  /**
   * Put a page of older `lines` (oldest first) above what `name` holds; a line whose id is
   * held already stays out.
   * @param {string} name
   * @param {Line[]} lines
   */
  prepend(name, lines) {
    const buffer = this.get(name);
    const held = new Set(buffer.lines.map((line) => line.id).filter(Boolean));
    const page = lines.filter((line) => !(line.id && held.has(line.id)));
    buffer.lines.unshift(...page);
    buffer.readUpto += page.length;
  }

  /** @param {string} name */
  close(name) {
    if (name === SERVER_BUFFER) return;
    this.buffers.delete(name);
    if (this.current === name) this.current = SERVER_BUFFER;
  }
}

/**
 * The rows of a buffer: its lines, a day separator before the first line of each day, and the
 * read marker before the first line not seen (when there is one and lines before it).
 * @param {Buffer} buffer
 * @param {number | null} markerAt
 * @param {(timestamp: number) => string} [dayOf]
 * @returns {Row[]}
 */
export function paneRows(buffer, markerAt, dayOf = localDay) {
  /** @type {Row[]} */
  const rows = [];
  let lastDay = "";
  buffer.lines.forEach((line, index) => {
    if (markerAt !== null && index === markerAt && index > 0) rows.push({ type: "marker" });
    const day = dayOf(line.timestamp);
    if (day !== lastDay) {
      rows.push({ type: "day", key: day, timestamp: line.timestamp });
      lastDay = day;
    }
    rows.push({ type: "line", line });
  });
  return rows;
}
