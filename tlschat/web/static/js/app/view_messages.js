// The message list: the rows of the buffer shown, kept in the DOM incrementally. The list is an
// aria-live log, and a screen reader announces every node added to it: so a new line adds one
// node, a changed delivery state replaces one, a page of older lines is inserted above, and only
// switching buffers redraws the whole list (marked busy meanwhile, so it is not read out whole).

import { paneRows } from "./buffers.js";
import { renderRow } from "./view_lines.js";

// Within this many pixels of the bottom, the list follows new lines.
const FOLLOW_SLACK = 48;

export class MessageList {
  /**
   * @param {HTMLElement} log the scrolling log region
   * @param {HTMLOListElement} list the rows, inside it
   */
  constructor(log, list) {
    this.log = log;
    this.list = list;
    this.shownBuffer = "";
    /** @type {Map<string, HTMLLIElement>} row key -> element */
    this._elements = new Map();
    /** @type {WeakMap<HTMLLIElement, import("./lines.js").Line>} */
    this._lineOf = new WeakMap();
    /** @type {WeakMap<import("./lines.js").Line, number>} */
    this._ids = new WeakMap();
    this._nextId = 0;
  }

  /**
   * @param {import("./buffers.js").Buffer} buffer
   * @param {number | null} markerAt
   * @param {string} ownNick
   */
  show(buffer, markerAt, ownNick) {
    const switched = buffer.name !== this.shownBuffer;
    const atBottom =
      this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < FOLLOW_SLACK;
    if (switched) {
      this.log.setAttribute("aria-busy", "true");
      this.list.replaceChildren();
      this._elements.clear();
      this.shownBuffer = buffer.name;
    }
    const anchor = switched ? null : this._firstVisibleLine();
    const anchorTop = anchor === null ? 0 : anchor.offsetTop;
    this._reconcile(paneRows(buffer, markerAt), ownNick);
    if (switched || atBottom) {
      this.log.scrollTop = this.log.scrollHeight;
    } else if (anchor !== null && anchor.isConnected) {
      // Lines went in above (a page of older ones): what the user was reading stays put.
      this.log.scrollTop += anchor.offsetTop - anchorTop;
    }
    if (switched) requestAnimationFrame(() => this.log.removeAttribute("aria-busy"));
  }

  /**
   * @returns {HTMLElement | null} the first line on screen: what the user is reading, which
   *   stays where it is when older lines go in above (day rows may move; lines do not)
   */
  _firstVisibleLine() {
    for (const node of this.list.children) {
      if (!(node instanceof HTMLElement) || !node.classList.contains("line")) continue;
      if (node.offsetTop + node.offsetHeight > this.log.scrollTop) return node;
    }
    return null;
  }

  /**
   * Make the list's children the rows', reusing the element of every row that did not change.
   * @param {import("./buffers.js").Row[]} rows
   * @param {string} ownNick
   */
  _reconcile(rows, ownNick) {
    /** @type {Map<string, number>} */
    const seen = new Map();
    /** @type {Map<string, HTMLLIElement>} */
    const kept = new Map();
    /** @type {HTMLLIElement[]} */
    const wanted = [];
    for (const row of rows) {
      const base = this._keyOf(row);
      const count = (seen.get(base) ?? 0) + 1;
      seen.set(base, count);
      const key = `${base}#${count}`;
      let node = this._elements.get(key);
      if (node === undefined || (row.type === "line" && this._lineOf.get(node) !== row.line)) {
        node = renderRow(row, ownNick);
        if (row.type === "line") this._lineOf.set(node, row.line);
      }
      kept.set(key, node);
      wanted.push(node);
    }
    let cursor = this.list.firstChild;
    for (const node of wanted) {
      if (node === cursor) cursor = cursor.nextSibling;
      else this.list.insertBefore(node, cursor);
    }
    while (cursor !== null) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    this._elements = kept;
  }

  /**
   * A row's identity across redraws: an own line's ref (its later states replace it), any other
   * line's object, a day's date.
   * @param {import("./buffers.js").Row} row
   * @returns {string}
   */
  _keyOf(row) {
    if (row.type === "marker") return "marker";
    if (row.type === "day") return `day:${row.key}`;
    if (row.line.ref) return `ref:${row.line.ref}`;
    let id = this._ids.get(row.line);
    if (id === undefined) {
      id = ++this._nextId;
      this._ids.set(row.line, id);
    }
    return `line:${id}`;
  }
}
