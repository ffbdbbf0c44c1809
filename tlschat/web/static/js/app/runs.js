// Runs (docs/PROTOCOL.md section 22, "Runs"): a reply whose list outgrows one frame comes as
// frames back to back, each with `part` and `more`. The feed puts one connection's open run
// together and hands back the whole reply once its last part came; a frame that breaks an open
// run (another type in the middle, a part out of order, its naming fields changed, past 400
// frames) drops it, with one error text. A port of chat/runs.py and chat/client/run_feed.py.

import { FrameError } from "../protocol/frames.js";

/** Frames in one run that the client accepts (400 full frames are 25 MiB). */
export const MAX_RUN_PARTS = 400;

/**
 * Every reply that may come as a run, by its first frame's type: its list, the type of its later
 * frames, and the fields each frame repeats to name the run.
 * @type {Readonly<Record<string, {key: string, continuation: string, naming: string[]}>>}
 */
export const RUNS = Object.freeze({
  joined: { key: "members", continuation: "members", naming: ["room"] },
  members: { key: "members", continuation: "members", naming: ["room"] },
  history: { key: "messages", continuation: "history", naming: ["room"] },
  presence: { key: "changes", continuation: "presence", naming: ["room"] },
  info: { key: "lines", continuation: "info", naming: ["title"] },
  search: { key: "messages", continuation: "search", naming: ["query"] },
  whois: { key: "rooms", continuation: "whois", naming: ["query"] },
});

/**
 * @param {import("../protocol/frames.js").Frame} frame
 * @returns {{part: number, more: boolean}}
 */
function position(frame) {
  const part = frame.part ?? 0;
  const more = frame.more ?? false;
  if (!Number.isSafeInteger(part) || part < 0 || part >= MAX_RUN_PARTS) {
    throw new FrameError(`'part' must be an integer from 0 to ${MAX_RUN_PARTS - 1}`);
  }
  if (typeof more !== "boolean") throw new FrameError("'more' must be true or false");
  return { part: /** @type {number} */ (part), more };
}

/**
 * @param {import("../protocol/frames.js").Frame} frame
 * @param {string} key
 * @returns {unknown[]}
 */
function items(frame, key) {
  const list = frame[key];
  if (!Array.isArray(list)) throw new FrameError(`'${key}' must be a list`);
  return list;
}

/** One connection's runs, one open at a time. */
export class RunFeed {
  constructor() {
    /** @type {{first: import("../protocol/frames.js").Frame, key: string, continuation: string,
     *           naming: Record<string, unknown>, items: unknown[], parts: number} | null} */
    this._open = null;
  }

  /** @returns {string} the type of the reply whose run is open, or "" */
  get open() {
    return this._open === null ? "" : String(this._open.first.type);
  }

  /**
   * Take one frame.
   * @param {import("../protocol/frames.js").Frame} frame
   * @returns {{frame: import("../protocol/frames.js").Frame | null, dropped: string}}
   *   `frame`: to act on now (null while its run waits for more parts, or when dropped);
   *   `dropped`: why a run was dropped, if one was. A malformed first part throws FrameError.
   */
  feed(frame) {
    const kind = frame.type;
    const open = this._open;
    if (open !== null && kind === open.continuation) return this._continue(frame);
    let dropped = "";
    if (open !== null) {
      dropped =
        `dropped an unfinished '${open.first.type}' reply from the server:` +
        ` a '${kind}' frame came in the middle of it`;
      this._open = null;
    }
    const spec = Object.hasOwn(RUNS, kind) ? RUNS[kind] : undefined;
    if (spec === undefined || !("part" in frame || "more" in frame)) return { frame, dropped };
    const list = items(frame, spec.key);
    const { part, more } = position(frame);
    if (part !== 0) throw new FrameError(`a '${kind}' run must start with part 0, not ${part}`);
    if (!more) return { frame: strip(frame), dropped };
    const naming = Object.fromEntries(spec.naming.map((name) => [name, frame[name]]));
    this._open = {
      first: frame,
      key: spec.key,
      continuation: spec.continuation,
      naming,
      items: [...list],
      parts: 1,
    };
    return { frame: null, dropped };
  }

  /** @param {import("../protocol/frames.js").Frame} frame */
  _continue(frame) {
    const run = /** @type {NonNullable<RunFeed["_open"]>} */ (this._open);
    const why = (/** @type {string} */ text) => {
      this._open = null;
      return {
        frame: null,
        dropped: `dropped an unfinished '${run.first.type}' reply from the server: ${text}`,
      };
    };
    let part, more, list;
    try {
      ({ part, more } = position(frame));
      list = items(frame, run.key);
    } catch (problem) {
      return why(/** @type {Error} */ (problem).message);
    }
    const renamed = Object.entries(run.naming).some(([name, value]) => frame[name] !== value);
    if (part !== run.parts || renamed) {
      return why(`part ${part} of a '${run.continuation}' run out of order; dropped`);
    }
    run.items.push(...list);
    run.parts += 1;
    if (more) return { frame: null, dropped: "" };
    this._open = null;
    return { frame: strip({ ...run.first, [run.key]: run.items }), dropped: "" };
  }
}

/**
 * @param {import("../protocol/frames.js").Frame} frame
 * @returns {import("../protocol/frames.js").Frame} the reply without its run position
 */
function strip(frame) {
  const { part: _part, more: _more, ...whole } = frame;
  return /** @type {import("../protocol/frames.js").Frame} */ (whole);
}
