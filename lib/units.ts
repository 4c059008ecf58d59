/**
 * Human-written quantities for the command line: durations, lists of
 * durations, frequencies in ppm, bounded integers; and the one format used to
 * print a duration.
 *
 * Errors: a TypeError when the argument is not of the JS type expected (a
 * programming error), a RangeError when the text is not acceptable. Each
 * message quotes the input, says what is wrong and what is expected; the CLI
 * wraps it in commander's InvalidArgumentError.
 *
 * Durations: a decimal number and a unit, with optional spaces between:
 * "250ms", "2s", "1.5m", "250 µs". Units: ns, us (or µs, μs), ms, s, m
 * (minutes), h. Case matters ("m" is minutes, "M" is unknown). No exponents.
 * A number without a unit is accepted only when it is zero ("0"). Values are
 * exact (decimal arithmetic on bigint); a fraction finer than 1 ns is rounded
 * to the nearest ns, half away from zero. Magnitudes above 1e18 ns (about
 * 31.7 years) are refused.
 */

/** Largest |duration| accepted, ns. */
export const MAX_DURATION_NS = 1_000_000_000_000_000_000n;
/** Largest |frequency| accepted by parsePpm, ppm. */
export const MAX_PPM = 100_000;

const UNIT_NS: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1_000n],
  ['µs', 1_000n], // U+00B5 MICRO SIGN
  ['μs', 1_000n], // U+03BC GREEK SMALL LETTER MU
  ['ms', 1_000_000n],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
]);

const UNITS_TEXT = 'ns, us, µs, ms, s, m or h';
const DURATION_HINT = 'expected a number with a unit, like 250ms, 2s, 1.5m';
// sign, integer part, fraction, unit (anything after the number, checked against UNIT_NS)
const DURATION_RE = /^([+-]?)(\d*)(?:\.(\d*))?\s*(.*)$/su;
const DECIMAL_RE = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)$/;

function checkString(text: unknown, what: string): string {
  if (typeof text !== 'string') throw new TypeError(`${what} must be given as a string, got ${typeof text}`);
  return text;
}

/** Parse "1.25" (digits, fraction) times multiplier to the nearest integer, half away from zero. */
function scaleDecimal(intDigits: string, fracDigits: string, multiplier: bigint): bigint {
  const den = 10n ** BigInt(fracDigits.length);
  const num = BigInt((intDigits || '0') + fracDigits) * multiplier;
  return (num * 2n + den) / (2n * den);
}

/**
 * A signed duration in ns: "-90ms", "+1.5s", "0". See the module comment for
 * the grammar. RangeError when the text is not a duration or is out of range.
 */
export function parseSignedDurationNs(text: string): bigint {
  checkString(text, 'a duration');
  const t = text.trim();
  const m = DURATION_RE.exec(t);
  const intDigits = m?.[2] ?? '';
  const fracDigits = m?.[3] ?? '';
  if (t === '') throw new RangeError(`"${text}" is not a duration: it is empty (${DURATION_HINT})`);
  if (!m || (intDigits === '' && fracDigits === '')) {
    throw new RangeError(`"${text}" is not a duration: ${DURATION_HINT}`);
  }
  const sign = m[1] === '-' ? -1n : 1n;
  const unit = m[4] ?? '';
  let multiplier: bigint;
  if (unit === '') {
    if (/[1-9]/.test(intDigits + fracDigits)) {
      throw new RangeError(`"${text}" is not a duration: the unit is missing (expected ${UNITS_TEXT}, like 250ms)`);
    }
    multiplier = 1n;
  } else {
    const u = UNIT_NS.get(unit);
    if (u === undefined) {
      throw new RangeError(`"${text}" is not a duration: unknown unit "${unit}"; ${DURATION_HINT} (units: ${UNITS_TEXT})`);
    }
    multiplier = u;
  }
  // More than 20 integer digits is out of range whatever the unit; fraction digits past
  // the 24th cannot change the rounding (a unit is at most 3.6e12 ns).
  const magnitude =
    intDigits.replace(/^0+/, '').length > 20
      ? MAX_DURATION_NS + 1n
      : scaleDecimal(intDigits, fracDigits.slice(0, 24), multiplier);
  if (magnitude > MAX_DURATION_NS) {
    throw new RangeError(`"${text}" is out of range: expected at most 1e18 ns (about 31 years) either way`);
  }
  return magnitude === 0n ? 0n : sign * magnitude;
}

/** A duration of 0 or more, in ns: "250ms", "2s", "1.5m", "0". */
export function parseDurationNs(text: string): bigint {
  const ns = parseSignedDurationNs(text);
  if (ns < 0n) throw new RangeError(`"${text}" is negative: expected a duration of 0 or more, like 250ms`);
  return ns;
}

/** Comma-separated signed durations, in ns: "-90ms,-60ms,-30ms,0". Spaces around commas are allowed. */
export function parseDurationList(text: string): bigint[] {
  checkString(text, 'a list of durations');
  if (text.trim() === '') {
    throw new RangeError(`"${text}" is not a list of durations: it is empty (expected comma-separated durations, like -90ms,-60ms,0)`);
  }
  return text.split(',').map((item, i) => {
    if (item.trim() === '') {
      throw new RangeError(`"${text}" is not a list of durations: item ${i + 1} is empty (expected comma-separated durations, like -90ms,-60ms,0)`);
    }
    try {
      return parseSignedDurationNs(item);
    } catch (e) {
      throw new RangeError(`"${text}": item ${i + 1}: ${(e as Error).message}`);
    }
  });
}

/** A frequency in ppm: "100", "100ppm", "-20.5ppm", "+3 ppm"; within ±MAX_PPM. */
export function parsePpm(text: string): number {
  checkString(text, 'a frequency');
  const t = text.trim().replace(/\s*ppm$/, '');
  if (!DECIMAL_RE.test(t)) {
    throw new RangeError(`"${text}" is not a frequency: expected a number of ppm, like 100, 100ppm or -20.5ppm`);
  }
  const ppm = Number(t);
  if (Math.abs(ppm) > MAX_PPM) {
    throw new RangeError(`"${text}" is out of range: expected between -${MAX_PPM} and ${MAX_PPM} ppm`);
  }
  return ppm === 0 ? 0 : ppm;
}

/**
 * A decimal integer in [min, max]: "8", "-3", "+5". `what` names the value in
 * the message ("node count"). No fractions, exponents or hex.
 */
export function parseIntInRange(text: string, min: number, max: number, what: string): number {
  checkString(text, what);
  if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min > max) {
    throw new RangeError(`parseIntInRange: bad bounds [${min}, ${max}] for ${what}`);
  }
  const t = text.trim();
  const expected = `expected an integer from ${min} to ${max}`;
  if (!/^[+-]?\d+$/.test(t)) throw new RangeError(`"${text}" is not a valid ${what}: ${expected}`);
  const n = Number(t);
  if (n < min || n > max) throw new RangeError(`"${text}" is out of range for ${what}: ${expected}`);
  return n === 0 ? 0 : n;
}

/**
 * A duration for people, signed, with a unit chosen by magnitude and a fixed
 * number of decimals so that columns line up:
 *
 *   |ns| < 1 µs   "+450 ns"       (exact)
 *   |ns| < 1 ms   "-12.300 µs"    (exact, 3 decimals)
 *   |ns| < 1 s    "+45.000 ms"    (3 decimals: µs resolution)
 *   otherwise     "+1.500 s"      (3 decimals: ms resolution; no larger unit)
 *
 * Zero is "0 ns", without a sign. Rounding is to the nearest last digit, half
 * away from zero; a value that rounds up to 1000 of its unit is shown in the
 * next unit ("+1.000 s", not "+1000.000 ms"). parseSignedDurationNs reads
 * every output back (to within the resolution shown).
 */
export function formatDurationNs(ns: bigint): string {
  if (typeof ns !== 'bigint') throw new TypeError(`formatDurationNs takes bigint ns, got ${typeof ns}`);
  if (ns === 0n) return '0 ns';
  const sign = ns < 0n ? '-' : '+';
  const a = ns < 0n ? -ns : ns;
  if (a < 1_000n) return `${sign}${a} ns`;
  // Thousandths of the unit, rounded half away from zero; promote while that reaches 1000 units.
  for (const [unit, nsPerDigit] of [['µs', 1n], ['ms', 1_000n]] as const) {
    const digits = (a * 2n + nsPerDigit) / (2n * nsPerDigit);
    if (digits < 1_000_000n) return `${sign}${thousandths(digits)} ${unit}`;
  }
  return `${sign}${thousandths((a * 2n + 1_000_000n) / 2_000_000n)} s`;
}

function thousandths(digits: bigint): string {
  return `${digits / 1_000n}.${(digits % 1_000n).toString().padStart(3, '0')}`;
}
