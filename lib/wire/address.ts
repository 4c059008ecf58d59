/**
 * IP addresses as the wire carries them (SYNC's unicastAddress): a family
 * byte, then 4 bytes (IPv4) or 16 bytes (IPv6), network order. Pure.
 *
 * In messages an address is a string: a dotted quad, or IPv6 text in the
 * canonical form of RFC 5952 (lower case, the longest run of two or more
 * zero groups written "::"), so that decode(encode(x)) gives x back. The
 * unspecified address of either family ("0.0.0.0", "::") means "the source
 * address of this datagram". Multicast and IPv4-mapped IPv6 addresses are
 * not unicast addresses of a master and are refused both ways.
 */

/** Family byte on the wire: the IP version. */
export const FAMILY_IPV4 = 4;
export const FAMILY_IPV6 = 6;

const DOTTED_QUAD = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** The 4 bytes of a dotted quad, or null. */
export function parseIPv4(text: string): Buffer | null {
  const match = typeof text === 'string' ? DOTTED_QUAD.exec(text) : null;
  if (!match) return null;
  const octets = match.slice(1, 5).map(Number);
  return octets.some((octet) => octet > 255) ? null : Buffer.from(octets);
}

/** The 16 bytes of IPv6 text (hex groups, one "::", an optional dotted-quad tail; no "%scope"), or null. */
export function parseIPv6(text: string): Buffer | null {
  if (typeof text !== 'string' || text.length > 45) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groupsOf = (part: string): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    const pieces = part.split(':');
    for (const [i, piece] of pieces.entries()) {
      if (i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIPv4(piece);
        if (!v4) return null;
        out.push(v4.readUInt16BE(0), v4.readUInt16BE(2));
      } else if (HEX_GROUP.test(piece)) {
        out.push(parseInt(piece, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  if (!head || !tail) return null;
  // A dotted quad may only end the address.
  if (halves.length === 2 && halves[0]!.includes('.')) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const out = Buffer.alloc(16);
  groups.forEach((group, i) => out.writeUInt16BE(group, 2 * i));
  return out;
}

/** RFC 5952 text of 16 bytes. */
export function formatIPv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // The longest run of zero groups (2 or more, the first of equal runs) becomes "::".
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) { bestStart = i; bestLength = j - i; }
    i = j;
  }
  const hexOf = (list: number[]): string => list.map((group) => group.toString(16)).join(':');
  if (bestStart < 0) return hexOf(groups);
  return `${hexOf(groups.slice(0, bestStart))}::${hexOf(groups.slice(bestStart + bestLength))}`;
}

/** The wire form of an address string: its family and bytes, or null if it is neither a dotted quad nor IPv6 text. */
export function addressBytes(text: string): { family: number; bytes: Buffer } | null {
  const v4 = parseIPv4(text);
  if (v4) return { family: FAMILY_IPV4, bytes: v4 };
  const v6 = parseIPv6(text);
  return v6 ? { family: FAMILY_IPV6, bytes: v6 } : null;
}

/** Why these bytes are no master's unicast address (multicast, IPv4-mapped), or null when they can be. */
export function unicastFault(family: number, bytes: Uint8Array): string | null {
  if (family === FAMILY_IPV4) return bytes[0]! >= 224 && bytes[0]! <= 239 ? 'an IPv4 multicast address' : null;
  if (bytes[0] === 0xff) return 'an IPv6 multicast address';
  const mapped = bytes.subarray(0, 12).every((byte, i) => byte === (i >= 10 ? 0xff : 0));
  return mapped ? 'an IPv4-mapped IPv6 address (send family 4)' : null;
}

/** The text of an address read from the wire. */
export function formatAddress(family: number, bytes: Uint8Array): string {
  return family === FAMILY_IPV4 ? Array.from(bytes.subarray(0, 4)).join('.') : formatIPv6(bytes);
}

/** True for "0.0.0.0" and "::": the advertised address is the datagram's source. */
export function isUnspecified(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/** True for IPv6 link-local unicast text (fe80::/10), which needs a scope (interface) to be reached. */
export function isLinkLocalIPv6(address: string): boolean {
  const bytes = parseIPv6(address.split('%')[0]!);
  return bytes !== null && bytes[0] === 0xfe && (bytes[1]! & 0xc0) === 0x80;
}

/**
 * Where a peer sends its requests and reports, from the address a SYNC
 * advertises and the SYNC's source (as the socket gave it, "%scope" and
 * all): the source for an unspecified address; an advertised link-local
 * IPv6 address takes the scope of the source, the interface the SYNC came in
 * on (an address without one cannot be reached).
 */
export function resolveAdvertised(advertised: string, source: string): string {
  if (isUnspecified(advertised)) return source;
  if (!advertised.includes('%') && isLinkLocalIPv6(advertised)) {
    const scope = source.indexOf('%');
    if (scope >= 0) return advertised + source.slice(scope);
  }
  return advertised;
}
