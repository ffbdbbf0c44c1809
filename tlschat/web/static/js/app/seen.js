// What this browser has shown on one network, so that a replayed line is never shown as new
// (docs/PROTOCOL.md section 21, recipient checks; a port of chat/seen.py). A live line is new
// only if it was signed recently and its counter is above every counter shown from its sender
// on this network. Counters only grow per sender, so one number per sender is enough; a sender
// quiet for longer than the skew is forgotten (a replay of their lines is too old to pass as
// new), and past the bound the oldest goes and the horizon rises to its time, so the bound costs
// late lines their "new", never a replay its "old". The page keeps the ledger in localStorage,
// one per network, as JSON (toJSON / fromJSON).

export const MAX_SKEW_MS = 10 * 60 * 1000;
export const MAX_SENDERS = 10_000;
export const LEDGER_VERSION = 1;

export class SeenLedger {
  /**
   * @param {number} [maxSenders]
   * @param {number} [skewMs]
   */
  constructor(maxSenders = MAX_SENDERS, skewMs = MAX_SKEW_MS) {
    this.maxSenders = maxSenders;
    this.skewMs = skewMs;
    this.horizonMs = 0;
    /** @type {Map<string, [number, number]>} sender -> [highest counter, newest time shown] */
    this._latest = new Map();
    /** Something changed since the page last saved it. */
    this.dirty = false;
  }

  /** @returns {number} */
  get size() {
    return this._latest.size;
  }

  /**
   * Signed too long ago (or before the horizon) to be shown as a new line.
   * @param {number} timestampMs
   * @param {number} nowMs
   */
  isStale(timestampMs, nowMs) {
    return timestampMs <= this.horizonMs || timestampMs < nowMs - this.skewMs;
  }

  /**
   * A line of `sender` with this counter, or a later one, was shown on this network.
   * @param {string} sender
   * @param {number} counter
   */
  wasShown(sender, counter) {
    const latest = this._latest.get(sender);
    return latest !== undefined && counter <= latest[0];
  }

  /**
   * `sender`'s line with `counter` was shown (live or as history), or signed by this client.
   * @param {string} sender
   * @param {number} counter
   * @param {number} timestampMs
   * @param {number} nowMs
   */
  record(sender, counter, timestampMs, nowMs) {
    const [counterBefore, newestBefore] = this._latest.get(sender) ?? [-1, 0];
    const next = /** @type {[number, number]} */ ([
      Math.max(counter, counterBefore),
      Math.max(timestampMs, newestBefore),
    ]);
    if (next[0] === counterBefore && next[1] === newestBefore) return;
    this._latest.set(sender, next);
    this.dirty = true;
    if (this._latest.size > this.maxSenders) this.prune(nowMs);
  }

  /**
   * Forget senders quiet for longer than the skew; past the bound, the oldest too.
   * @param {number} nowMs
   */
  prune(nowMs) {
    const cutoff = nowMs - this.skewMs;
    for (const [sender, [, newest]] of this._latest) {
      if (newest < cutoff) {
        this._latest.delete(sender);
        this.dirty = true;
      }
    }
    if (this._latest.size > this.maxSenders) {
      const byAge = [...this._latest].sort((a, b) => a[1][1] - b[1][1]);
      const excess = byAge.slice(0, this._latest.size - this.maxSenders);
      for (const [sender] of excess) this._latest.delete(sender);
      this.horizonMs = Math.max(this.horizonMs, excess[excess.length - 1][1][1]);
      this.dirty = true;
    }
  }

  /** @returns {{version: number, horizonMs: number, senders: [string, number, number][]}} */
  toJSON() {
    return {
      version: LEDGER_VERSION,
      horizonMs: this.horizonMs,
      senders: [...this._latest].map(([sender, [counter, newest]]) => [sender, counter, newest]),
    };
  }

  /**
   * A ledger from what toJSON stored, pruned as of `nowMs`. Anything else is refused with a
   * TypeError: a damaged ledger is never half read, since a lost entry would let a replay pass.
   * @param {unknown} data
   * @param {number} nowMs
   * @returns {SeenLedger}
   */
  static fromJSON(data, nowMs) {
    const ledger = new SeenLedger();
    const stored = /** @type {{version?: unknown, horizonMs?: unknown, senders?: unknown}} */ (
      data
    );
    const count = (/** @type {unknown} */ v) => Number.isSafeInteger(v) && Number(v) >= 0;
    if (
      stored === null ||
      typeof stored !== "object" ||
      stored.version !== LEDGER_VERSION ||
      !count(stored.horizonMs) ||
      !Array.isArray(stored.senders)
    ) {
      throw new TypeError("not a ledger of lines shown");
    }
    ledger.horizonMs = Number(stored.horizonMs);
    for (const entry of stored.senders) {
      const fits =
        Array.isArray(entry) &&
        entry.length === 3 &&
        typeof entry[0] === "string" &&
        count(entry[1]) &&
        count(entry[2]);
      if (!fits) throw new TypeError("not a ledger of lines shown");
      ledger._latest.set(entry[0], [entry[1], entry[2]]);
    }
    ledger.prune(nowMs);
    ledger.dirty = false;
    return ledger;
  }
}
