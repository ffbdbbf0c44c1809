// Who is in each room (a port of chat/client/rosters.py): the member list of `joined` and
// `members`, kept current by `join`, `leave` and `presence` batches; large rooms' lazy lists,
// and the watch the page keeps on the one whose members it shows (docs/PROTOCOL.md section 22,
// "Presence budget" and "Large rooms"). A large room's list is the one fetched, plus the keys
// seen speaking, minus the leaves heard; its count the server's, less the leaves heard and,
// while watched (every join and leave comes then), plus the arrivals.

import { fieldStr, FrameError } from "../protocol/frames.js";
import { fingerprintsEqual } from "../protocol/identity.js";
import { ClientSending } from "./chat_sending.js";
import { serverCommand } from "./chat_commands.js";
import { outgoing } from "./delivery.js";
import { error, makeLine, notice } from "./lines.js";

/** A batch of more changes than this is shown as one summary line. */
export const MAX_SHOWN_CHANGES = 3;
const MAX_MEMBER_COUNT = 1e9;
const MAX_AWAY_CHARS = 256;
const MAX_REASON_BYTES = 1024;

/** @typedef {import("./lines.js").Line} Line */
/** @typedef {import("../protocol/frames.js").Frame} Frame */
/** @typedef {import("./chat_base.js").Member} Member */
/**
 * @typedef {{kind: "join" | "leave", nick: string, fingerprint: string, reason: string,
 *            away: string}} Change
 */

export class ClientRosters extends ClientSending {
  /**
   * @param {import("../protocol/identity.js").ClientIdentity} identity
   * @param {string} nick
   */
  constructor(identity, nick) {
    super(identity, nick);
    /** @type {Set<string>} rooms whose `joined` was lazy (large rooms) */
    this.lazyRooms = new Set();
    /** @type {Map<string, number>} their member counts */
    this.memberCounts = new Map();
    /** @type {Set<string>} rooms this session watches */
    this.watching = new Set();
    // Rooms whose member list this client asked for itself: the answer only fills the list.
    /** @type {Set<string>} */
    this._fetching = new Set();
    // Rooms this client stopped watching, whose answer (notice or error) it shows nobody.
    /** @type {Set<string>} */
    this._unwatching = new Set();
    // Commands this client queued by itself: a lost connection takes them away.
    /** @type {import("./delivery.js").Outgoing[]} */
    this._asked = [];
  }

  prepareReconnect() {
    super.prepareReconnect();
    this.lazyRooms.clear();
    this.memberCounts.clear();
    this.watching.clear();
    this._fetching.clear();
    this._unwatching.clear();
    this.queue.waiting = this.queue.waiting.filter((item) => !this._asked.includes(item));
    this._asked = [];
  }

  /** @param {string} room @returns {number} how many keys are in `room`, as far as known */
  memberCount(room) {
    const listed = this.members.get(room)?.size ?? 0;
    return Math.max(this.memberCounts.get(room) ?? listed, listed);
  }

  /**
   * Watch `room` if it is a large room (its members shown), and no other room; "" watches none.
   * @param {string} room
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async watchOnly(room, now) {
    /** @type {Line[]} */
    const lines = [];
    for (const other of [...this.watching].sort()) {
      if (other === room) continue;
      this.watching.delete(other);
      if (this.rooms.includes(other)) {
        this._unwatching.add(other);
        lines.push(...(await this._ask(serverCommand("unwatch", other), `/unwatch ${other}`, now)));
      }
    }
    if (this.lazyRooms.has(room) && !this.watching.has(room)) {
      this.watching.add(room);
      this._fetching.add(room);
      this._unwatching.delete(room);
      lines.push(...(await this._ask(serverCommand("watch", room), `/watch ${room}`, now)));
    }
    return lines;
  }

  /**
   * Queue a command this client sends by itself, paced with the user's.
   * @param {Frame} frame
   * @param {string} text
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async _ask(frame, text, now) {
    this._asked = this._asked.filter((item) => this.queue.waiting.includes(item));
    const item = outgoing(this.queue.nextRef(), text, { command: frame });
    if (!this.queue.add(item))
      return error(`not sent (${text}): too many lines waiting to be sent`, now);
    this._asked.push(item);
    return this.tick(now);
  }

  /**
   * @param {string} text a notice or an error
   * @returns {boolean} it answers an `unwatch` this client sent by itself: nobody asked to see it
   */
  _quietAnswer(text) {
    for (const room of this._unwatching) {
      if (
        text === `no longer watching who comes and goes in ${room}` ||
        text === `you do not watch ${room}`
      ) {
        this._unwatching.delete(room);
        return true;
      }
    }
    return false;
  }

  /** @param {Frame} frame @param {number} now @returns {Promise<Line[]>} */
  async _onJoined(frame, now) {
    const room = fieldStr(frame, "room", 64);
    // The user talks in the room joined, unless a reconnect's rejoin brings it back: then the
    // room stays the one they talked in. A /join they typed moves it whatever.
    const asked = this.joinsAsked.delete(room);
    if (asked || !(this.rejoining.has(room) || this._awaitingRejoin.size)) this.room = room;
    if (!this.rooms.includes(room)) this.rooms.push(room);
    this.rejoining.delete(room);
    this._awaitingRejoin.delete(room);
    const present = this._memberList(frame);
    this.members.set(room, present);
    const lazy = frame.lazy === true;
    const count = countOf(frame.member_count, present.size);
    if (lazy) {
      this.lazyRooms.add(room);
      this.memberCounts.set(room, Math.max(count, present.size));
    } else {
      this.lazyRooms.delete(room);
      this.memberCounts.delete(room);
    }
    if (frame.encrypted === true) this._roomIsEncrypted(room);
    const others = [...present.values()].map((m) => m.nick).filter((n) => n !== this.nick);
    const company = lazy
      ? `, a large room of ${count} members`
      : others.length
        ? ` with ${others.join(", ")}`
        : " (nobody else is here)";
    const lines = [
      makeLine("joined", now, `You are ${this.nick} in ${room}${company}`, {
        nick: this.nick,
        room,
      }),
    ];
    const topic = typeof frame.topic === "string" ? fieldStr(frame, "topic", 1024) : "";
    this.topics.set(room, topic);
    if (topic) lines.push(makeLine("topic", now, `Topic of ${room}: ${topic}`, { room }));
    return [...lines, ...(await this._rejoined(now))];
  }

  /**
   * A room's whole member list: the answer to `members` or `watch`.
   * @param {Frame} frame
   * @param {number} now
   */
  async _onMembers(frame, now) {
    const room = fieldStr(frame, "room", 64);
    if (!this.rooms.includes(room))
      return error(`dropped a member list of ${room}, a room you are not in`, now);
    const present = this._memberList(frame);
    this.members.set(room, present);
    if (this.lazyRooms.has(room)) {
      this.memberCounts.set(
        room,
        Math.max(countOf(frame.member_count, present.size), present.size),
      );
    }
    if (this._fetching.delete(room)) return [];
    return notice(`${room} has ${this.memberCount(room)} members; /names lists them`, now);
  }

  /** @param {Frame} frame @param {number} now @returns {Promise<Line[]>} */
  async _onParted(frame, now) {
    const room = fieldStr(frame, "room", 64);
    this.rooms = this.rooms.filter((r) => r !== room);
    this.rejoining.delete(room);
    this.members.delete(room);
    this.topics.delete(room);
    this.lazyRooms.delete(room);
    this.memberCounts.delete(room);
    this.watching.delete(room); // the server watches a room only while the session is in it
    this._fetching.delete(room);
    if (this.room === room) this.room = this.rooms.at(-1) ?? "";
    const nowIn = this.room ? `; now talking in ${this.room}` : "; /join a room to talk";
    return notice(`You left ${room}${nowIn}`, now);
  }

  /**
   * The members a frame lists, by casefolded nick; entries that are not members are skipped.
   * @param {Frame} frame
   * @returns {Map<string, Member>}
   */
  _memberList(frame) {
    /** @type {Map<string, Member>} */
    const present = new Map();
    for (const entry of Array.isArray(frame.members) ? frame.members : []) {
      const member = memberOf(entry);
      if (member === null) continue;
      present.set(member.nick.toLowerCase(), member);
      this._learn(member.nick, member.fingerprint);
      this._keyChanged(member.nick, member.fingerprint);
    }
    return present;
  }

  /** One `join` or `leave`. @param {Frame} frame @param {number} now @returns {Promise<Line[]>} */
  async _onPresence(frame, now) {
    const change = changeOf(frame);
    const shown = this._applyChange(fieldStr(frame, "room", 64), change, now);
    return shown === null ? [] : [shown.line];
  }

  /**
   * The joins and leaves of a room that waited for its presence budget, oldest first: each
   * applied; a few shown one by one, more as one summary line.
   * @param {Frame} frame
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async _onPresenceBatch(frame, now) {
    const room = fieldStr(frame, "room", 64);
    const entries = frame.changes;
    if (!Array.isArray(entries)) throw new FrameError("'changes' must be a list");
    if (!this.rooms.includes(room)) {
      return error(
        `dropped ${entries.length} joins and leaves of ${room}, a room you are not in`,
        now,
      );
    }
    /** @type {{line: Line, change: Change, warning: boolean}[]} */
    const shown = [];
    let malformed = 0;
    for (const entry of entries) {
      let change;
      try {
        if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
          throw new FrameError("a change must be an object");
        }
        change = changeOf(entry);
      } catch (problem) {
        if (!(problem instanceof FrameError)) throw problem;
        malformed += 1;
        continue;
      }
      if (fingerprintsEqual(change.fingerprint, this.identity.fingerprint)) continue;
      const applied = this._applyChange(room, change, now);
      if (applied !== null) shown.push(applied);
    }
    let lines;
    if (shown.length <= MAX_SHOWN_CHANGES) {
      lines = shown.map((each) => each.line);
    } else {
      // The changes that name another key than their nick had stay loud, one by one.
      const joined = shown.filter((each) => each.change.kind === "join").length;
      const left = shown.length - joined;
      const parts = [...(joined ? [`${joined} joined`] : []), ...(left ? [`${left} left`] : [])];
      const summary = makeLine("presence", now, `${parts.join(" and ")} ${room}`, {
        room,
        count: shown.length,
      });
      lines = [summary, ...shown.filter((each) => each.warning).map((each) => each.line)];
    }
    if (malformed)
      lines.push(...error(`ignored ${malformed} malformed joins or leaves of ${room}`, now));
    return lines;
  }

  /**
   * Apply one join or leave to `room`'s list and count; how it is shown, or null when it
   * changes nothing (a join of a key listed already).
   * @param {string} room
   * @param {Change} change
   * @param {number} now
   */
  _applyChange(room, change, now) {
    const present = this.members.get(room);
    const folded = change.nick.toLowerCase();
    const { nick, fingerprint } = change;
    let warning = false;
    let text;
    let listed = false;
    if (change.kind === "join") {
      const known = present?.get(folded);
      if (known !== undefined && fingerprintsEqual(known.fingerprint, fingerprint)) return null;
      present?.set(folded, { nick, fingerprint, away: change.away });
      this._learn(nick, fingerprint);
      warning = this._keyChanged(nick, fingerprint);
      const suffix = warning
        ? ` [WARNING: not the key ${nick} had before; now ${fingerprint}]`
        : "";
      text = `${nick} joined ${room}${suffix}`;
    } else {
      listed = present?.delete(folded) ?? false;
      this._memberGone(room, fingerprint);
      text = `${nick} left ${room}${change.reason ? ` (${change.reason})` : ""}`;
    }
    this._recount(room, change.kind, listed);
    const line = makeLine(change.kind, now, text, { nick, fingerprint, room, keyChanged: warning });
    return { line, change, warning };
  }

  /** @param {string} room @param {string} kind @param {boolean} listed */
  _recount(room, kind, listed) {
    if (!this.lazyRooms.has(room)) return;
    let count = this.memberCounts.get(room) ?? 0;
    if (kind === "leave") count -= 1;
    // A watcher hears every arrival; others only the delayed joins of speakers.
    else if (this.watching.has(room) && !listed) count += 1;
    this.memberCounts.set(room, Math.max(count, this.members.get(room)?.size ?? 0));
  }
}

/**
 * @param {string} text
 * @returns {number} UTF-8 bytes; -1 for a string with a lone surrogate
 */
function size(text) {
  return text.isWellFormed() ? new TextEncoder().encode(text).length : -1;
}

/** @param {unknown} entry @returns {Member | null} */
function memberOf(entry) {
  if (entry === null || typeof entry !== "object") return null;
  const { nick, fingerprint, away = "" } = /** @type {Record<string, unknown>} */ (entry);
  if (typeof nick !== "string" || typeof fingerprint !== "string" || typeof away !== "string")
    return null;
  if (!(size(nick) > 0 && size(nick) <= 64 && size(fingerprint) > 0 && size(fingerprint) <= 64))
    return null;
  return { nick, fingerprint, away: away.slice(0, MAX_AWAY_CHARS) };
}

/**
 * A `join` or `leave` (a frame, or an entry of a `presence` batch).
 * @param {Frame} frame
 * @returns {Change}
 */
function changeOf(frame) {
  const kind = frame.type;
  if (kind !== "join" && kind !== "leave")
    throw new FrameError("a change must be a 'join' or a 'leave'");
  const nick = fieldStr(frame, "nick", 64);
  const fingerprint = fieldStr(frame, "fingerprint", 64);
  const reason =
    kind === "leave" && typeof frame.reason === "string"
      ? fieldStr(frame, "reason", MAX_REASON_BYTES)
      : "";
  const away = typeof frame.away === "string" ? frame.away.slice(0, MAX_AWAY_CHARS) : "";
  return { kind, nick, fingerprint, reason, away };
}

/** @param {unknown} value @param {number} fallback */
function countOf(value, fallback) {
  return Number.isSafeInteger(value) && Number(value) >= 0 && Number(value) <= MAX_MEMBER_COUNT
    ? Number(value)
    : fallback;
}
