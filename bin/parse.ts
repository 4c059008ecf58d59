/**
 * Option parsers for commander: each wraps a lib/units parser so that a bad
 * value becomes commander's InvalidArgumentError, which names the option.
 */
import { InvalidArgumentError } from 'commander';
import {
  parseDurationList,
  parseDurationNs,
  parseIntInRange,
  parsePpm,
  parseSignedDurationNs,
} from '../lib/units.js';
import { parseListen } from '../lib/daemon/metrics.js';

function wrap<T>(fn: (text: string) => T): (text: string) => T {
  return (text: string) => {
    try {
      return fn(text);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

export const duration = wrap(parseDurationNs);
export const positiveDuration = wrap((t) => {
  const ns = parseDurationNs(t);
  if (ns <= 0n) throw new RangeError(`"${t}" must be above 0`);
  return ns;
});
export const signedDuration = wrap(parseSignedDurationNs);
export const durationList = wrap(parseDurationList);
export const ppm = wrap(parsePpm);
export const int = (min: number, max: number, what: string) => wrap((t) => parseIntInRange(t, min, max, what));
export const fraction = wrap((t) => {
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(t.trim());
  const v = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
  if (!(v >= 0 && v <= 1)) throw new RangeError(`"${t}" is not a fraction: expected 0 to 1, or 0% to 100%`);
  return v;
});
export const listenAddress = wrap(parseListen);
