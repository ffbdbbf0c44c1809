// The panes beside the messages: the rooms and conversations (with unread counts and mentions,
// said in words too), the members of the room shown, and the "You" panel (nick, this browser's
// key, the server's key). Redrawn whole, they are small; the focused item keeps the focus.

import { SERVER_BUFFER } from "./buffers.js";
import { neutralize, shortFingerprint } from "./lines.js";
import { nickClass } from "./view_lines.js";

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 */
function element(tag, className = "", text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

/**
 * Redraw `list` with new items, giving the focus back to the item that had it.
 * @param {HTMLElement} list
 * @param {HTMLElement[]} items
 * @param {string} key the data attribute that names an item
 */
function redraw(list, items, key) {
  const focused = document.activeElement;
  const had =
    focused instanceof HTMLElement && list.contains(focused) ? focused.dataset[key] : undefined;
  list.replaceChildren(...items);
  if (had !== undefined) {
    /** @type {HTMLElement | null} */ (
      list.querySelector(`[data-${key}="${CSS.escape(had)}"]`)
    )?.focus();
  }
}

/**
 * @param {import("./buffers.js").Buffer} buffer
 * @param {boolean} current
 * @param {boolean} away the client is not in this room (any more)
 * @returns {HTMLLIElement}
 */
function bufferItem(buffer, current, away) {
  const item = /** @type {HTMLLIElement} */ (element("li"));
  const button = element("button");
  button.setAttribute("type", "button");
  button.dataset.testid = "room-item";
  button.dataset.buffer = buffer.name;
  if (current) button.setAttribute("aria-current", "true");
  const label = buffer.name === SERVER_BUFFER ? "Server messages" : neutralize(buffer.name);
  button.append(element("span", "name", label));
  const words = [label];
  if (away) {
    button.append(element("span", "badge", "left"));
    words.push("not joined");
  }
  if (buffer.unread) {
    button.append(
      element("span", `badge${buffer.mentioned ? " mention" : ""}`, String(buffer.unread)),
    );
    words.push(`${buffer.unread} unread`);
  }
  if (buffer.mentioned) {
    if (!buffer.unread) button.append(element("span", "badge mention", "@"));
    words.push("mentions you");
  }
  button.dataset.unread = String(buffer.unread);
  button.dataset.mentioned = String(buffer.mentioned);
  button.setAttribute("aria-label", words.join(", "));
  item.append(button);
  return item;
}

/**
 * @param {{rooms: HTMLElement, conversations: HTMLElement}} lists
 * @param {import("./buffers.js").Buffers} buffers
 * @param {(room: string) => boolean} joined
 */
export function drawBufferLists(lists, buffers, joined) {
  const names = buffers.names();
  const item = (/** @type {string} */ name) =>
    bufferItem(buffers.get(name), name === buffers.current, name.startsWith("#") && !joined(name));
  redraw(lists.rooms, names.filter((n) => !n.startsWith("@")).map(item), "buffer");
  redraw(lists.conversations, names.filter((n) => n.startsWith("@")).map(item), "buffer");
}

/**
 * @param {{count: HTMLElement, list: HTMLElement}} pane
 * @param {import("./chat_client.js").ChatClient} chat
 * @param {string} name the buffer shown
 */
export function drawMembers(pane, chat, name) {
  if (!name.startsWith("#") || !chat.members.has(name)) {
    pane.count.textContent = name.startsWith("@")
      ? `A conversation with ${name.slice(1)}`
      : chat.rejoining.has(name)
        ? "Listed again once reconnected"
        : name.startsWith("#")
          ? "Not in this room"
          : "No room shown";
    pane.list.replaceChildren();
    return;
  }
  const members = [...(chat.members.get(name)?.values() ?? [])].sort((a, b) =>
    a.nick.toLowerCase().localeCompare(b.nick.toLowerCase()),
  );
  const count = chat.memberCount(name);
  pane.count.textContent =
    `${count} member${count === 1 ? "" : "s"}` +
    (chat.lazyRooms.has(name) && members.length < count ? `; ${members.length} listed` : "");
  const items = members.map((member) => {
    const item = element("li");
    const button = element("button");
    button.setAttribute("type", "button");
    button.dataset.testid = "member-item";
    button.dataset.nick = member.nick;
    button.title = `Open a conversation with ${member.nick} (key ${member.fingerprint})`;
    button.append(
      element("span", `nick ${nickClass(member.fingerprint)}`, neutralize(member.nick)),
    );
    button.append(element("span", "key", shortFingerprint(member.fingerprint)));
    if (member.away) button.append(element("span", "away", `away: ${neutralize(member.away)}`));
    item.append(button);
    return item;
  });
  redraw(pane.list, items, "nick");
}

/**
 * @param {{nick: HTMLElement, fingerprint: HTMLElement, server: HTMLElement}} panel
 * @param {import("./chat_client.js").ChatClient} chat
 */
export function drawYou(panel, chat) {
  panel.nick.textContent = chat.nick || chat.wantedNick || "(the server will give you one)";
  panel.fingerprint.textContent = chat.identity.fingerprint;
  panel.server.textContent = chat.network || "not connected";
}
