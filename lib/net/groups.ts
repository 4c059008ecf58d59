/**
 * Multicast groups and interfaces of either family: what `--group` and
 * `--interface` may say, and how they resolve on this host.
 *
 * An IPv4 group (224.0.0.0/4) is joined on an interface named by its IPv4
 * address. An IPv6 group (ff00::/8) is joined on an interface named by its
 * name, whose index the socket calls take ("::%eth0" in Node's dgram); the
 * kernel picks the source address. A link-local group (ff02::/16) exists
 * once per link, so it needs the interface named; wider scopes (ff05::
 * site, ff08:: organisation, ff0e:: global) follow the routes when none is.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { parseIPv6 } from '../wire/address.js';

export type Family = 4 | 6;

export interface GroupInfo {
  family: Family;
  /** IPv6 multicast scope (RFC 4291: 2 link, 5 site, 8 organisation, 14 global); null for IPv4. */
  scope: number | null;
}

/** The family and scope of a multicast group address; throws RangeError saying what is wrong. */
export function parseGroup(text: string): GroupInfo {
  if (isIPv4(text)) {
    const first = Number(text.split('.')[0]);
    if (first < 224 || first > 239) throw new RangeError(`"${text}" is not a multicast address (IPv4: 224.0.0.0 to 239.255.255.255, use 239.255.x.y on a LAN; IPv6: ff02::/16 on a link, ff05::/16 on a site)`);
    return { family: 4, scope: null };
  }
  const bytes = isIPv6(text) ? parseIPv6(text) : null;
  if (!bytes) throw new RangeError(`"${text}" is not an IPv4 or IPv6 address (a scope such as %eth0 goes in --interface)`);
  if (bytes[0] !== 0xff) throw new RangeError(`"${text}" is not a multicast address (IPv6 multicast is ff00::/8: ff02::/16 on a link, ff05::/16 on a site)`);
  const scope = bytes[1]! & 0x0f;
  if (scope < 2 || scope === 15) throw new RangeError(`"${text}" has multicast scope ${scope}: use link (ff02::) or a wider scope (ff05:: site, ff08:: organisation, ff0e:: global)`);
  return { family: 6, scope };
}

/** Family of a group address (without checking it is multicast). */
export function familyOf(group: string): Family {
  return isIPv6(group) ? 6 : 4;
}

interface Iface {
  name: string;
  address: string;
  family: Family;
  internal: boolean;
}

function interfaces(): Iface[] {
  return Object.entries(networkInterfaces()).flatMap(([name, addrs]) =>
    (addrs ?? []).map((a) => ({ name, address: a.address, family: (a.family === 'IPv6' || (a.family as unknown) === 6 ? 6 : 4) as Family, internal: a.internal })),
  );
}

/** An address as --interface may give it (an IPv6 address may carry %scope, which is dropped). */
function sameAddress(a: string, spec: string): boolean {
  const bare = spec.split('%')[0]!;
  if (isIPv4(bare)) return a === bare;
  const x = parseIPv6(a.split('%')[0]!);
  const y = parseIPv6(bare);
  return x !== null && y !== null && x.equals(y);
}

/**
 * The interface to join a group of `family` on, given by name or by an
 * address of either family (the interface that holds it). IPv4: the
 * interface's IPv4 address; with nothing given, the first IPv4 address of a
 * non-loopback interface, else 127.0.0.1. IPv6: the interface's name; with
 * nothing given, "" (the kernel follows its routes). Throws RangeError
 * naming what this host has.
 */
export function resolveInterfaceOf(spec: string | undefined, family: Family): string {
  const all = interfaces();
  const mine = all.filter((a) => a.family === family);
  if (spec === undefined || spec === '') {
    if (family === 6) return '';
    return mine.find((a) => !a.internal)?.address ?? '127.0.0.1';
  }
  const hit = all.find((a) => a.name === spec) ?? all.find((a) => sameAddress(a.address, spec));
  const have = (list: Iface[]) => [...new Set(list.map((a) => `${a.name} (${a.address})`))].join(', ') || 'none';
  if (!hit) throw new RangeError(`no interface "${spec}" on this host (have: ${have(all)})`);
  if (family === 6) {
    if (!mine.some((a) => a.name === hit.name)) throw new RangeError(`interface ${hit.name} has no IPv6 address (IPv6 interfaces: ${have(mine)})`);
    return hit.name;
  }
  const v4 = mine.find((a) => a.name === hit.name && (hit.family !== 4 || a.address === hit.address));
  if (!v4) throw new RangeError(`interface ${hit.name} has no IPv4 address (IPv4 interfaces: ${have(mine)})`);
  return v4.address;
}

/**
 * The addresses datagrams this host sends on the interface come from, as a
 * socket reports a source (link-local IPv6 with "%name"): how a node tells
 * its own datagrams from another host's.
 */
export function ownAddresses(interfaceAddress: string, family: Family): Set<string> {
  if (family === 4) return new Set([interfaceAddress]);
  return new Set(
    interfaces()
      .filter((a) => a.family === 6 && (interfaceAddress === '' || a.name === interfaceAddress))
      .map((a) => (a.address.toLowerCase().startsWith('fe80:') ? `${a.address}%${a.name}` : a.address)),
  );
}

/**
 * IPv6 destinations for sendto(2): "addr", "addr%ifname" or "addr%index"
 * as 16 bytes and a scope id (interface index, 0 for a global address). A
 * link-local (or interface-local) group is scoped by the interface the group
 * was joined on. Interface indexes are looked up once and kept.
 */
export class Scopes {
  private readonly indexes = new Map<string, number>();

  constructor(
    private readonly groupInterface: string,
    private readonly indexOf: (name: string) => number,
  ) {}

  /** null where the address is no IPv6 text or its scope names no interface: Node's send must resolve it. */
  destination(address: string): { bytes: Buffer; scopeId: number } | null {
    const at = address.indexOf('%');
    const bytes = parseIPv6(at < 0 ? address : address.slice(0, at));
    if (!bytes) return null;
    const scope = at >= 0 ? address.slice(at + 1) : bytes[0] === 0xff && (bytes[1]! & 0x0f) <= 2 ? this.groupInterface : '';
    if (scope === '') return { bytes, scopeId: 0 };
    let scopeId = this.indexes.get(scope);
    if (scopeId === undefined) {
      scopeId = /^\d+$/.test(scope) ? Number(scope) : this.indexOf(scope);
      if (this.indexes.size > 64) this.indexes.clear();
      this.indexes.set(scope, scopeId);
    }
    return scopeId > 0 ? { bytes, scopeId } : null;
  }
}
