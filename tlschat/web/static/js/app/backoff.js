// How long the page waits before its next attempt to connect (a port of client/backoff.py).
// Full jitter, a uniformly random wait up to an exponentially growing bound: when a server comes
// back after a restart, its clients do not all knock at the same instant.

export const FIRST_BACKOFF = 1;
export const MAX_BACKOFF = 30;
// 2**5 already passes the cap: no need for larger powers.
const MAX_DOUBLINGS = 16;

/**
 * @param {number} attempt 0 for the first retry
 * @param {() => number} random a float in [0, 1)
 * @param {number} [base]
 * @param {number} [cap]
 * @returns {number} seconds
 */
export function backoffDelay(attempt, random, base = FIRST_BACKOFF, cap = MAX_BACKOFF) {
  const bound = Math.min(cap, base * 2 ** Math.min(Math.max(attempt, 0), MAX_DOUBLINGS));
  return random() * bound;
}

/**
 * @param {number} seconds
 * @returns {string} 'now', 'in 0.4 s', 'in 12 s': a wait as the user reads it
 */
export function describeDelay(seconds) {
  if (seconds < 0.05) return "now";
  if (seconds < 9.95) return `in ${seconds.toFixed(1)} s`;
  return `in ${seconds.toFixed(0)} s`;
}
