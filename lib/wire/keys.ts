/**
 * Key files for the HMAC-SHA256 authentication of datagrams.
 *
 * Format (UTF-8 text, see docs/protocol.md, "Key file"):
 *
 *     # comment: '#' starts a comment anywhere on a line
 *     <id> HMAC-SHA256 HEX:<hex>
 *
 * - one key per line; blank and comment-only lines are ignored; fields are
 *   separated by spaces or tabs; CRLF line ends are accepted;
 * - <id> is a decimal key id, 1..255 (0 means "no tag" on the wire), unique
 *   in the file;
 * - the algorithm is HMAC-SHA256 (upper or lower case);
 * - the key is given in hex after "HEX:", at least 32 bytes (64 hex digits),
 *   even number of digits, upper or lower case.
 *
 * The FIRST key of the file signs every outgoing datagram; every key of the
 * file is accepted on receive. Rotation without a gap: add the new key as
 * the second line on every host, then move it first on every host, then
 * remove the old one.
 *
 * This module parses and generates the text only; reading the file (and
 * checking its permissions) belongs to the daemon.
 */

import { randomBytes } from 'node:crypto';

/** Key ids on the wire are a u8; 0 means "unauthenticated". */
export const MIN_KEY_ID = 1;
export const MAX_KEY_ID = 255;
/** Shortest key accepted: as long as the SHA-256 output. */
export const MIN_KEY_BYTES = 32;
/** The only algorithm, as written in key files. */
export const KEY_ALGORITHM = 'HMAC-SHA256';

/** The keys of a key file. */
export interface Keyring {
  /** Id of the key that signs outgoing datagrams (the first of the file). */
  sendKeyId: number;
  /** The key with this id, or undefined. */
  get(id: number): Buffer | undefined;
  /** Every key id, in file order (the send key first). */
  ids(): number[];
}

export type ParseKeyFileResult =
  | { ok: true; keyring: Keyring }
  | { ok: false; error: string };

/**
 * A keyring from (id, key) pairs; the first pair is the send key.
 * Throws on an empty list, an id out of 1..255, a duplicate id or a key
 * shorter than MIN_KEY_BYTES (programmer error: use parseKeyFile for input).
 */
export function createKeyring(keys: ReadonlyArray<readonly [number, Buffer]>): Keyring {
  if (keys.length === 0) throw new RangeError('a keyring needs at least one key');
  const byId = new Map<number, Buffer>();
  for (const [id, key] of keys) {
    if (!isKeyId(id)) throw new RangeError(`key id out of range 1..255: ${id}`);
    if (byId.has(id)) throw new RangeError(`duplicate key id ${id}`);
    if (key.length < MIN_KEY_BYTES) throw new RangeError(`key ${id} is shorter than ${MIN_KEY_BYTES} bytes`);
    byId.set(id, Buffer.from(key)); // own copy: the caller may reuse its buffer
  }
  const order = [...byId.keys()];
  return {
    sendKeyId: order[0]!,
    get: (id: number) => byId.get(id),
    ids: () => [...order],
  };
}

/** Parses the text of a key file. Never throws; an error names the line and the fault. */
export function parseKeyFile(text: string): ParseKeyFileResult {
  const keys: Array<[number, Buffer]> = [];
  const seen = new Map<number, number>(); // key id -> line number
  const lines = text.replace(/^\uFEFF/, '').split('\n');

  for (let index = 0; index < lines.length; index++) {
    const lineNo = index + 1;
    const hash = lines[index]!.indexOf('#');
    const content = (hash >= 0 ? lines[index]!.slice(0, hash) : lines[index]!).trim();
    if (content === '') continue;

    const fields = content.split(/[ \t]+/);
    if (fields.length !== 3) {
      return fail(lineNo, `expected "<id> ${KEY_ALGORITHM} HEX:<hex>", found ${fields.length} field(s)`);
    }
    const [idText, algorithm, keyText] = fields as [string, string, string];

    if (!/^[0-9]{1,3}$/.test(idText) || !isKeyId(Number(idText))) {
      return fail(lineNo, `key id "${idText}" is not a number in ${MIN_KEY_ID}..${MAX_KEY_ID}`);
    }
    const id = Number(idText);
    const earlier = seen.get(id);
    if (earlier !== undefined) return fail(lineNo, `duplicate key id ${id} (first on line ${earlier})`);

    if (algorithm.toUpperCase() !== KEY_ALGORITHM) {
      return fail(lineNo, `unsupported algorithm "${algorithm}" (only ${KEY_ALGORITHM})`);
    }
    if (keyText.slice(0, 4).toUpperCase() !== 'HEX:') {
      return fail(lineNo, 'key must be written as HEX:<hex digits>');
    }
    const hex = keyText.slice(4);
    if (!/^[0-9a-fA-F]*$/.test(hex)) return fail(lineNo, 'key contains a character that is not a hex digit');
    if (hex.length % 2 !== 0) return fail(lineNo, 'key has an odd number of hex digits');
    if (hex.length < MIN_KEY_BYTES * 2) {
      return fail(lineNo, `key is ${hex.length / 2} bytes, at least ${MIN_KEY_BYTES} (${MIN_KEY_BYTES * 2} hex digits) required`);
    }

    seen.set(id, lineNo);
    keys.push([id, Buffer.from(hex, 'hex')]);
  }

  if (keys.length === 0) return { ok: false, error: 'key file holds no key' };
  return { ok: true, keyring: createKeyring(keys) };
}

/** The text of a new key file holding one random 32-byte key with id `id` (default 1). */
export function generateKeyFile(id = 1): string {
  if (!isKeyId(id)) throw new RangeError(`key id out of range 1..255: ${id}`);
  const hex = randomBytes(MIN_KEY_BYTES).toString('hex');
  return [
    '# berkeleyd key file: one key per line, "<id> HMAC-SHA256 HEX:<hex>", id 1..255.',
    '# The first key signs outgoing datagrams; every key listed is accepted.',
    '# Keep it secret (mode 0600) and identical on every host of the group.',
    `# Generated ${new Date().toISOString()}.`,
    `${id} ${KEY_ALGORITHM} HEX:${hex}`,
    '',
  ].join('\n');
}

function isKeyId(id: number): boolean {
  return Number.isInteger(id) && id >= MIN_KEY_ID && id <= MAX_KEY_ID;
}

function fail(lineNo: number, what: string): ParseKeyFileResult {
  return { ok: false, error: `line ${lineNo}: ${what}` };
}
