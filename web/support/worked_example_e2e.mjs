// Reads the "End to end" part of docs/PROTOCOL.md's worked example (section 24) at test time:
// its facts, its labelled hex values and its JSON lines, in the order the document gives them.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { textBlockValues } from "./worked_example.mjs";

const DOC = new URL("../../docs/PROTOCOL.md", import.meta.url);

/**
 * @typedef {{facts: Map<string, string>, values: Map<string, {value: Uint8Array}>,
 *            json: Record<string, any>[], jsonText: string[], bodies: string[]}} E2eExample
 *   `bodies`: the message texts the part names in bold headings, in order
 */

/** @returns {E2eExample} */
export function readE2eExample() {
  const text = readFileSync(DOC, "utf8");
  const section = text
    .split("<!-- worked-example:begin -->")[1]
    .split("<!-- worked-example:end -->")[0];
  const parts = section.split("\n### End to end");
  assert.equal(parts.length, 2, "one End to end part");
  const part = parts[1];
  const facts = new Map();
  for (const [, name, value] of part.matchAll(/^- ([^:\n]+): `([^`]+)`$/gm)) facts.set(name, value);
  for (const [, first, value, second, other] of part.matchAll(
    /^- ([^:\n]+): `([^`]+)`; ([^:\n]+): `([^`]+)`$/gm,
  )) {
    facts.set(first, value);
    facts.set(second, other);
  }
  const jsonText = [...part.matchAll(/```json\n([\s\S]*?)```/g)].flatMap(([, block]) =>
    block.split("\n").filter((line) => line.trim()),
  );
  const bodies = [...part.matchAll(/\*\*The (?:private message|room line)\*\* `([^`]+)`/g)].map(
    (m) => m[1],
  );
  return {
    facts,
    values: textBlockValues(part),
    json: jsonText.map((line) => JSON.parse(line)),
    jsonText,
    bodies,
  };
}
