// Desktop notifications for mentions and private lines while the tab is hidden. Permission is
// asked only when the user presses the button for it (browsers refuse, or hold against a site,
// a request made without a user gesture); once granted, nothing more is asked.

import { bodyLines, neutralize } from "./lines.js";

const MAX_BODY = 200;

/** @returns {boolean} this browser can show notifications at all */
export function canNotify() {
  return typeof Notification !== "undefined";
}

/** @returns {string} "granted", "denied", "default", or "unsupported" */
export function notifyState() {
  return canNotify() ? Notification.permission : "unsupported";
}

/** @returns {Promise<string>} the permission after asking (call from a user gesture only) */
export async function askToNotify() {
  return canNotify() ? Notification.requestPermission() : "unsupported";
}

/**
 * Notify of each line that rings, if the tab is hidden and notifications are allowed.
 * @param {import("./lines.js").Line[]} rings
 * @param {(line: import("./lines.js").Line) => string} bufferOf where each line was filed
 * @param {(name: string) => void} show called with the buffer when a notification is clicked
 */
export function notify(rings, bufferOf, show) {
  if (!rings.length || document.visibilityState !== "hidden" || notifyState() !== "granted") return;
  for (const line of rings) {
    const name = bufferOf(line);
    const where = name.startsWith("@") ? "privately" : `in ${name}`;
    const body = bodyLines(line.text).join(" ↵ ");
    const notification = new Notification(`${neutralize(line.nick)} ${where}`, {
      body: body.length > MAX_BODY ? `${body.slice(0, MAX_BODY)}…` : body,
      tag: name,
    });
    notification.onclick = () => {
      window.focus();
      show(name);
      notification.close();
    };
  }
}
