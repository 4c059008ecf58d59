import test from 'ava';
import {
  MAX_DURATION_NS,
  formatDurationNs,
  parseDurationList,
  parseDurationNs,
  parseIntInRange,
  parsePpm,
  parseSignedDurationNs,
} from '../lib/units.js';

const goodDurations: Array<[string, bigint]> = [
  ['0', 0n],
  ['0.0', 0n],
  ['000', 0n],
  ['0s', 0n],
  ['1ns', 1n],
  ['250ms', 250_000_000n],
  ['2s', 2_000_000_000n],
  ['1.5s', 1_500_000_000n],
  ['1.5m', 90_000_000_000n],
  ['2h', 7_200_000_000_000n],
  ['12us', 12_000n],
  ['12µs', 12_000n], // U+00B5
  ['12μs', 12_000n], // U+03BC
  ['.5ms', 500_000n],
  ['5.ms', 5_000_000n],
  ['  250 ms ', 250_000_000n],
  ['+3s', 3_000_000_000n],
  ['0.0000000015s', 2n], // 1.5 ns rounds half away from zero
  ['0.0000000014s', 1n],
  ['1.4ns', 1n],
  ['0.4ns', 0n],
  ['0.123456789123456789123456789123456789s', 123_456_789n],
  ['1000000000s', 1_000_000_000_000_000_000n], // exactly the limit
  ['00000000000000000000000001s', 1_000_000_000n],
];

for (const [text, ns] of goodDurations) {
  test(`parseDurationNs(${JSON.stringify(text)}) = ${ns}`, (t) => {
    t.is(parseDurationNs(text), ns);
    t.is(parseSignedDurationNs(text), ns);
  });
}

const goodSigned: Array<[string, bigint]> = [
  ['-90ms', -90_000_000n],
  ['-1.5s', -1_500_000_000n],
  ['-0', 0n],
  ['-0.0000000015s', -2n],
  ['-1000000000s', -MAX_DURATION_NS],
];

for (const [text, ns] of goodSigned) {
  test(`parseSignedDurationNs(${JSON.stringify(text)}) = ${ns}`, (t) => {
    t.is(parseSignedDurationNs(text), ns);
  });
}

// [input, pattern the message must match]
const badDurations: Array<[string, RegExp]> = [
  ['', /empty/],
  ['   ', /empty/],
  ['2x', /unknown unit "x".*like 250ms, 2s, 1\.5m/],
  ['250', /unit is missing/],
  ['1.5', /unit is missing/],
  ['ms', /expected a number with a unit/],
  ['.ms', /expected a number with a unit/],
  ['.', /expected a number with a unit/],
  ['NaN', /expected a number with a unit/],
  ['Infinity', /expected a number with a unit/],
  ['-', /expected a number with a unit/],
  ['--5ms', /expected a number with a unit/],
  ['- 5ms', /expected a number with a unit/],
  ['5MS', /unknown unit "MS"/],
  ['5 sec', /unknown unit "sec"/],
  ['5toString', /unknown unit "toString"/],
  ['5__proto__', /unknown unit "__proto__"/],
  ['1e3ms', /unknown unit "e3ms"/],
  ['0x10s', /unknown unit "x10s"/],
  ['5ms5', /unknown unit "ms5"/],
  ['1,5s', /unknown unit/],
  ['1000000000.000000001s', /out of range/],
  ['1000000000000000001ns', /out of range/],
  ['99999999999999999999999999999h', /out of range/],
  ['300000h', /out of range/],
];

for (const [text, message] of badDurations) {
  test(`parseSignedDurationNs rejects ${JSON.stringify(text)}`, (t) => {
    const e = t.throws(() => parseSignedDurationNs(text), { instanceOf: RangeError });
    t.regex(e?.message ?? '', message);
    t.true(e?.message.startsWith(`"${text}"`));
    t.throws(() => parseDurationNs(text), { instanceOf: RangeError });
  });
}

test('parseDurationNs refuses negative durations', (t) => {
  for (const text of ['-90ms', '-1ns', '-0.5s']) {
    t.throws(() => parseDurationNs(text), { instanceOf: RangeError, message: /negative.*0 or more/ });
  }
  t.is(parseDurationNs('-0'), 0n);
});

test('duration parsers reject non-strings with TypeError', (t) => {
  t.throws(() => parseDurationNs(5 as unknown as string), { instanceOf: TypeError });
  t.throws(() => parseSignedDurationNs(undefined as unknown as string), { instanceOf: TypeError });
  t.throws(() => parseDurationList(null as unknown as string), { instanceOf: TypeError });
});

const goodLists: Array<[string, bigint[]]> = [
  ['-90ms,-60ms,-30ms,0', [-90_000_000n, -60_000_000n, -30_000_000n, 0n]],
  ['1s', [1_000_000_000n]],
  [' 1s , -2ms ', [1_000_000_000n, -2_000_000n]],
];

for (const [text, list] of goodLists) {
  test(`parseDurationList(${JSON.stringify(text)})`, (t) => {
    t.deepEqual(parseDurationList(text), list);
  });
}

const badLists: Array<[string, RegExp]> = [
  ['', /empty/],
  ['1s,,2s', /item 2 is empty/],
  ['1s,', /item 2 is empty/],
  [',1s', /item 1 is empty/],
  ['1s,2x', /item 2: "2x" is not a duration: unknown unit/],
  ['-90ms;-60ms', /item 1: .*unknown unit/],
];

for (const [text, message] of badLists) {
  test(`parseDurationList rejects ${JSON.stringify(text)}`, (t) => {
    t.throws(() => parseDurationList(text), { instanceOf: RangeError, message });
  });
}

const goodPpm: Array<[string, number]> = [
  ['100', 100],
  ['100ppm', 100],
  ['-20.5ppm', -20.5],
  ['+3 ppm', 3],
  ['0', 0],
  ['-0', 0],
  ['.5', 0.5],
  ['100000', 100_000],
  ['-100000ppm', -100_000],
];

for (const [text, ppm] of goodPpm) {
  test(`parsePpm(${JSON.stringify(text)}) = ${ppm}`, (t) => {
    t.is(parsePpm(text), ppm);
  });
}

const badPpm: Array<[string, RegExp]> = [
  ['', /not a frequency/],
  ['ppm', /not a frequency/],
  ['abc', /not a frequency/],
  ['NaN', /not a frequency/],
  ['Infinity', /not a frequency/],
  ['1e3', /not a frequency/],
  ['100ppb', /not a frequency/],
  ['100 PPM', /not a frequency/],
  ['0x10', /not a frequency/],
  ['100001', /out of range.*-100000 and 100000/],
  ['-100000.5ppm', /out of range/],
  ['9'.repeat(400), /out of range/],
];

for (const [text, message] of badPpm) {
  test(`parsePpm rejects ${JSON.stringify(text.slice(0, 20))}`, (t) => {
    t.throws(() => parsePpm(text), { instanceOf: RangeError, message });
  });
}

const goodInts: Array<[string, number, number, number]> = [
  ['8', 1, 64, 8],
  [' 8 ', 1, 64, 8],
  ['+5', 0, 10, 5],
  ['-3', -5, 5, -3],
  ['-0', 0, 0, 0],
  ['0001', 0, 10, 1],
  ['255', 0, 255, 255],
];

for (const [text, min, max, n] of goodInts) {
  test(`parseIntInRange(${JSON.stringify(text)}, ${min}, ${max}) = ${n}`, (t) => {
    t.is(parseIntInRange(text, min, max, 'count'), n);
  });
}

const badInts: Array<[string, number, number, RegExp]> = [
  ['', 0, 10, /"" is not a valid priority: expected an integer from 0 to 10/],
  ['1.5', 0, 10, /not a valid priority/],
  ['1e2', 0, 1000, /not a valid priority/],
  ['0x10', 0, 100, /not a valid priority/],
  ['ten', 0, 10, /not a valid priority/],
  ['11', 0, 10, /"11" is out of range for priority: expected an integer from 0 to 10/],
  ['-1', 0, 10, /out of range/],
  ['99999999999999999999', 0, 10, /out of range/],
];

for (const [text, min, max, message] of badInts) {
  test(`parseIntInRange rejects ${JSON.stringify(text)} in [${min}, ${max}]`, (t) => {
    t.throws(() => parseIntInRange(text, min, max, 'priority'), { instanceOf: RangeError, message });
  });
}

test('parseIntInRange rejects bad bounds', (t) => {
  t.throws(() => parseIntInRange('1', 5, 1, 'x'), { instanceOf: RangeError });
  t.throws(() => parseIntInRange('1', 0, 1.5, 'x'), { instanceOf: RangeError });
  t.throws(() => parseIntInRange(1 as unknown as string, 0, 5, 'x'), { instanceOf: TypeError });
});

const formats: Array<[bigint, string]> = [
  [0n, '0 ns'],
  [1n, '+1 ns'],
  [-450n, '-450 ns'],
  [999n, '+999 ns'],
  [1_000n, '+1.000 µs'],
  [-12_300n, '-12.300 µs'],
  [999_999n, '+999.999 µs'],
  [1_000_000n, '+1.000 ms'],
  [45_000_000n, '+45.000 ms'],
  [-45_000_000n, '-45.000 ms'],
  [1_234_499n, '+1.234 ms'],
  [1_234_500n, '+1.235 ms'], // half away from zero
  [-1_234_500n, '-1.235 ms'],
  [999_999_499n, '+999.999 ms'],
  [999_999_500n, '+1.000 s'], // rounds up to 1000 ms: shown in seconds
  [-999_999_500n, '-1.000 s'],
  [1_500_000_000n, '+1.500 s'],
  [3_600_000_000_000n, '+3600.000 s'],
  [-MAX_DURATION_NS, '-1000000000.000 s'],
];

for (const [ns, text] of formats) {
  test(`formatDurationNs(${ns}) = ${JSON.stringify(text)}`, (t) => {
    t.is(formatDurationNs(ns), text);
  });
}

test('formatDurationNs output parses back within the resolution shown', (t) => {
  for (const [ns] of formats) {
    const back = parseSignedDurationNs(formatDurationNs(ns));
    const a = ns < 0n ? -ns : ns;
    const resolution = a < 1_000_000n ? 0n : a < 999_999_500n ? 500n : 500_000n;
    const err = back - ns;
    t.true(err <= resolution && err >= -resolution, `${ns} -> ${formatDurationNs(ns)} -> ${back}`);
  }
});

test('formatDurationNs rejects a number', (t) => {
  t.throws(() => formatDurationNs(5 as unknown as bigint), { instanceOf: TypeError });
});
