/**
 * Two segments joined by a boundary host (--upstream), for the tests on
 * loopback (upstream.test.ts) and in network namespaces
 * (segments-netns.test.ts): the scenario, the ground truth (every process
 * shares CLOCK_MONOTONIC, also across namespaces), and the second leg a
 * boundary host needs on a LAN of namespaces.
 */
import type { ExecutionContext } from 'ava';
import { query } from '../../lib/daemon/control.js';
import type { Cluster, MemberSpec } from '../../lib/daemon/cluster.js';
import { sleep, waitFor } from './group.js';
import type { Host, Lan } from './netns.js';

export const US = 1_000n;
export const fmt = (ns: bigint | number): string => `${(Number(ns) / 1000).toFixed(1)} µs`;
export const pct = (xs: bigint[], p: number): bigint => {
  const s = [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
export const spread = (xs: bigint[]): bigint => xs.reduce((a, b) => (b > a ? b : a)) - xs.reduce((a, b) => (b < a ? b : a));

/** Each named clock minus the first one's, at one instant (each reading carried by its monotonic time). */
export async function relative(c: Cluster, names: string[]): Promise<bigint[]> {
  const rs = await Promise.all(names.map(async (n) => (await query(c.member(n).control, 'reading')) as { groupTimeNs: string; monotonicNs: string }));
  const at = (i: number): bigint => BigInt(rs[i]!.groupTimeNs) - BigInt(rs[i]!.monotonicNs);
  return rs.map((_, i) => at(i) - at(0));
}

/** n readings of the named clocks ~200 ms apart: the spread of each subset given, per reading. */
export async function spreads(c: Cluster, names: string[], subsets: Record<string, string[]>, n: number): Promise<Record<string, bigint[]>> {
  const out: Record<string, bigint[]> = Object.fromEntries(Object.keys(subsets).map((k) => [k, []]));
  for (let i = 0; i < n; i++) {
    const r = await relative(c, names);
    for (const [k, sub] of Object.entries(subsets)) out[k]!.push(spread(sub.map((s) => r[names.indexOf(s)]!)));
    await sleep(200);
  }
  return out;
}

export interface Segments {
  /** Upper group's members, its pinned master first (the boundary host not included). */
  upper: string[];
  boundary: string;
  lower: string[];
}

/**
 * Converged figures, then the boundary host killed (SIGKILL) and restarted:
 * the largest move of a lower clock against the top between readings
 * ~100 ms apart. Asserts what must hold; returns the figures.
 */
export async function killAndRestart(t: ExecutionContext, c: Cluster, s: Segments): Promise<bigint> {
  const top = s.upper[0]!;
  await c.kill(s.boundary, 'SIGKILL');
  await waitFor('the lower group to elect a master', async () => {
    const st = await c.status(s.lower[0]!).catch(() => null);
    return st && st.masterId !== null && st.masterId !== s.boundary && st.synced ? st.masterId : undefined;
  }, 20_000, { everyMs: 100 });
  await sleep(2_000);
  let prev = await relative(c, [top, ...s.lower]);
  let largest = 0n;
  // Watched from before the restart until 2 s after its group follows it again.
  let until = Date.now() + 40_000;
  const watch = (async () => {
    while (Date.now() < until) {
      const r = await relative(c, [top, ...s.lower]).catch(() => null);
      if (r) {
        for (let i = 1; i < r.length; i++) {
          const d = r[i]! - prev[i]! < 0n ? prev[i]! - r[i]! : r[i]! - prev[i]!;
          if (d > largest) largest = d;
        }
        prev = r;
      }
      await sleep(100);
    }
  })();
  await c.restart(s.boundary, 20_000);
  await waitFor(`${s.lower[0]} to follow the boundary host again`, async () => ((await c.status(s.lower[0]!)).masterId === s.boundary ? true : undefined), 20_000, { everyMs: 100 });
  until = Date.now() + 2_000;
  await watch;
  t.true(largest < 1_000n * US, `no step beyond the tolerance: ${fmt(largest)}`);
  return largest;
}

/** In a network namespace: `ip netns exec NS cmd ...`. */
export const inNetns = (h: Host): MemberSpec['wrap'] => (cmd, args) => ['ip', ['netns', 'exec', h.netns, cmd, ...args]];

/**
 * Splits the LAN into two segments (two bridges): upper (with the boundary
 * host's eth0) and lower, which moves to its own subnet; the boundary host
 * gets a second leg, eth1, on the lower bridge. Daemons then join with
 * --interface eth0 (eth1 for the boundary host's own group).
 */
export async function twoSegments(lan: Lan, upper: Host[], boundary: Host, lower: Host[], exec: (args: string[]) => Promise<void>): Promise<void> {
  await lan.partition([...upper, boundary], lower);
  const net = `10.${200 + (Number(lan.subnet.split('.')[2]) % 50)}.${lan.subnet.split('.')[2]}`;
  for (const [i, h] of lower.entries()) await exec(['-n', h.netns, 'addr', 'flush', 'dev', 'eth0']), await exec(['-n', h.netns, 'addr', 'add', `${net}.${i + 1}/24`, 'dev', 'eth0']);
  await exec(['-n', lan.switchNetns, 'link', 'add', 'bnd-leg', 'type', 'veth', 'peer', 'name', 'eth1', 'netns', boundary.netns]);
  await exec(['-n', lan.switchNetns, 'link', 'set', 'bnd-leg', 'master', 'br2', 'up']);
  await exec(['-n', boundary.netns, 'addr', 'add', `${net}.254/24`, 'dev', 'eth1']);
  await exec(['-n', boundary.netns, 'link', 'set', 'eth1', 'up']);
  await sleep(300);
}
