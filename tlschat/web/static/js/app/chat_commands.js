// The commands the web client runs itself, as one table of small handlers (the terminal
// client's chat/client/commands.py). Each handler gets the
// client and the command's arguments and returns the lines to show; every other /command goes
// to the server as typed, which answers unknown ones itself.

import { ACTION_PREFIX, REFUSED, error, makeLine, notice } from "./lines.js";

/** The title of the server's `info` answer to `help`, one line per command ("/name ..."). */
export const HELP_TITLE = "Server commands";

/**
 * @typedef {import("./chat_client.js").ChatClient} Client
 * @typedef {(client: Client, args: string, now: number) => Promise<import("./lines.js").Line[]>}
 *   Handler
 * @typedef {{usage: string, summary: string, needsArgument: boolean, handler: Handler}} Command
 */

/** The page's keys, for /help and the help dialog. */
export const KEYS_HELP = Object.freeze([
  ["Enter", "send the line (a message, or a /command)"],
  ["Shift+Enter", "another line of the same message"],
  ["Alt+Up, Alt+Down", "previous and next room or conversation"],
  ["Ctrl+K", "jump to a room or conversation"],
  ["Escape", "close a dialog"],
]);

/**
 * @param {string} name
 * @param {string} args
 * @returns {import("../protocol/frames.js").Frame}
 */
export const serverCommand = (name, args) => ({ type: "command", name, args });

/** @type {Handler} */
async function help(client, _args, now) {
  const lines = [makeLine("info", now, "Client commands:")];
  for (const { usage, summary } of Object.values(CLIENT_COMMANDS)) {
    lines.push(makeLine("info", now, `  ${usage.padEnd(28)} ${summary}`));
  }
  lines.push(makeLine("info", now, "Keys:"));
  for (const [keys, what] of KEYS_HELP)
    lines.push(makeLine("info", now, `  ${keys.padEnd(18)} ${what}`));
  return [...lines, ...(await client.sendCommand(serverCommand("help", ""), "/help", now))];
}

/** @type {Handler} */
const me = (client, args, now) => client.say(ACTION_PREFIX + args, now);

/** @type {Handler} */
async function msg(client, args, now) {
  const space = args.indexOf(" ");
  const nick = space === -1 ? args : args.slice(0, space);
  const body = space === -1 ? "" : args.slice(space + 1);
  if (!body.trim()) return usageOf("msg", now);
  const fingerprint = client.directory.get(nick.toLowerCase());
  const lines = await client.say(body, now, fingerprint ? `@${fingerprint}` : "", nick);
  // The line is filed in the conversation with `nick`: a refusal is said where it was typed too.
  const refused = lines.find((line) => line.delivery === REFUSED);
  return refused === undefined
    ? lines
    : [...lines, ...error(`not sent to ${nick}: ${refused.problem}`, now)];
}

/** @type {Handler} */
async function reply(client, args, now) {
  if (client.lastPrivate === null) return error("nobody has sent you a private message yet", now);
  const [nick, fingerprint] = client.lastPrivate;
  return client.say(args, now, `@${fingerprint}`, nick);
}

/** @type {Handler} */
async function ignore(client, args, now) {
  if (!args) {
    return notice(`Ignoring: ${[...client.ignored].sort().join(", ") || "nobody"}`, now);
  }
  const fingerprint =
    client.directory.get(args.toLowerCase()) ?? (args.startsWith("SHA256:") ? args : "");
  if (!fingerprint) return error(`unknown nick ${args}; /whois it first`, now);
  client.ignored.add(fingerprint);
  return notice(`Ignoring ${args} (${fingerprint})`, now);
}

/** @type {Handler} */
async function unignore(client, args, now) {
  const fingerprint = client.directory.get(args.toLowerCase()) ?? args;
  if (!client.ignored.delete(fingerprint)) return error(`you are not ignoring ${args}`, now);
  return notice(`No longer ignoring ${args}`, now);
}

/**
 * A command whose room argument defaults to the room the user talks in.
 * @param {string} name
 * @returns {Handler}
 */
const inRoom = (name) => (client, args, now) =>
  client.sendCommand(serverCommand(name, args || client.room), `/${name} ${args}`.trim(), now);

/** @type {Handler} */
function topic(client, args, now) {
  const full = args.startsWith("#") ? args : `${client.room} ${args}`.trim();
  return client.sendCommand(serverCommand("topic", full), `/topic ${args}`.trim(), now);
}

/** @type {Handler} */
async function more(client, args, now) {
  const room = args.split(" ")[0];
  if (room && !room.startsWith("#")) return usageOf("more", now);
  return client.loadOlder(room, now);
}

/** @type {Handler} */
const verify = (client, args, now) => client.verifyCommand(args, now);

/** @type {Handler} */
const devices = (client, args, now) => client.devicesCommand(args, now);

/**
 * @param {string} usage
 * @param {string} summary
 * @param {Handler} handler
 * @returns {Command}
 */
function command(usage, summary, handler) {
  const args = usage.split(" ").slice(1).join(" ");
  return {
    usage,
    summary,
    needsArgument: Boolean(args.replace(/\[[^\]]*\]/g, "").trim()),
    handler,
  };
}

/** @type {Readonly<Record<string, Command>>} */
export const CLIENT_COMMANDS = Object.freeze({
  help: command("/help", "this help, then the server's commands", help),
  me: command("/me ACTION", "say that you do something", me),
  msg: command("/msg NICK TEXT", "a private message (end-to-end encrypted)", msg),
  reply: command("/reply TEXT", "answer the last private message", reply),
  ignore: command("/ignore [NICK]", "hide someone's messages (list if no NICK)", ignore),
  unignore: command("/unignore NICK", "show someone's messages again", unignore),
  part: command("/part [#room]", "leave a room (the current one by default)", inRoom("part")),
  topic: command("/topic [#room] [TEXT]", "show or set a topic", topic),
  names: command("/names [#room]", "who is in a room", inRoom("names")),
  more: command("/more [#room]", "the page of a room's history before what is shown", more),
  verify: command("/verify NICK|yes|no", "compare emoji with NICK to verify their key", verify),
  devices: command("/devices [remove ID]", "list your devices, or remove one", devices),
});

/**
 * @param {string} name
 * @param {number} now
 * @returns {import("./lines.js").Line[]}
 */
export function usageOf(name, now) {
  const { usage, summary } = CLIENT_COMMANDS[name];
  return error(`usage: ${usage} — ${summary}`, now);
}

/**
 * @param {string} helpLine a line of the server's help
 * @returns {string} the command it is about: its first word, without the '/'
 */
export function commandName(helpLine) {
  return (helpLine.trim().split(/\s+/)[0] ?? "").replace(/^\//, "").toLowerCase();
}
