/**
 * Readable renderings of status and time, for the CLI and the demo (pure).
 */
import { magnitude } from '../table.js';
import { formatDurationNs } from '../units.js';
import { formatBound, type BoundJson } from './bound.js';
import type { StatusJson } from './status.js';

/** 2026-11-26T07:40:01.123456789Z from nanoseconds since the epoch. */
export function isoNs(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const frac = ((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
  return new Date(Number(ms)).toISOString().replace(/\.\d{3}Z$/, `.${frac.toString().padStart(9, '0')}Z`);
}

/** The group clock; with the bound's fields (a daemon's `now`), the interval [earliest, latest] and the bound on lines of their own. */
export function formatNow(groupTimeNs: bigint, b?: BoundJson): string {
  const line = `${isoNs(groupTimeNs)}  (${groupTimeNs} ns since 1970)`;
  if (!b) return line;
  const edge = (s: string | null): string => (s === null ? '-' : isoNs(BigInt(s)));
  return [line, `earliest ${edge(b.earliestNs)}`, `latest   ${edge(b.latestNs)}`, `bound    ${formatBound(b)}`].join('\n');
}

const dur = (s: string | null): string => (s === null ? '-' : formatDurationNs(BigInt(s)));
const mag = (s: string | null): string => (s === null ? '-' : magnitude(BigInt(s)));

function kernelLines(s: StatusJson): string[] {
  const c = s.clock;
  const k = c.kernel;
  const out: string[] = [];
  if (c.kind === 'system') {
    out.push(`System clock     : disciplined by this daemon, ${c.synchronized ? 'synchronized' : 'not synchronized'}, from ${c.startFrequencyPpm?.toFixed(3)} ppm, now ${c.disciplinedFrequencyPpm?.toFixed(3)} ppm`);
  }
  if (k) {
    const sign = k.frequencyPpm >= 0 ? '+' : '';
    out.push(`Kernel clock     : ${sign}${k.frequencyPpm.toFixed(3)} ppm (freq ${k.freq}, tick ${k.tick}), status ${k.statusNames.join(' ') || 'none'} (${k.state}), maxerror ${k.maxErrorUs} µs, esterror ${k.estErrorUs} µs`);
  }
  return out;
}

/** Receive timestamps per socket: the kernel's share, and why the others were not the kernel's; then the send path. */
function stamps(s: StatusJson): string {
  const net = s.counters.net;
  const part = (via: 'unicast' | 'group'): string => {
    const c = net.rxStamps[via];
    const n = c.kernel + c.user;
    const why = (['missing', 'late', 'old', 'step'] as const).filter((k) => c[k] > 0).map((k) => `${k} ${c[k]}`).join(', ');
    return `${via} ${n === 0 ? '-' : `${((100 * c.kernel) / n).toFixed(1)}%`} kernel (${c.kernel} of ${n}${why ? `; user space: ${why}` : ''})`;
  };
  return `${part('unicast')}, ${part('group')}; sends direct ${net.tx.direct}, through Node ${net.tx.node}`;
}

/** The table at scale: the master's limit, refusals and the burst it asks for; a peer's place in the table. */
function membershipLine(s: StatusJson): string {
  const m = s.membership;
  if (s.role === 'master') {
    const refused = m.refused > 0 ? `, ${m.refused} refused so far${m.full ? ' (refusing now)' : ''}` : '';
    return `${s.members.length} of at most ${m.maxMembers} members${refused}; bursts of ${m.probes} exchange(s) asked`;
  }
  const place = m.inTable === false ? `left out of the master's table (${m.leftOut}): not synchronized` : 'in the table';
  return `${place}; bursts of ${m.probes} exchange(s)`;
}

export function formatStatus(s: StatusJson): string {
  const role =
    s.role === 'master'
      ? `master (epoch ${s.epoch}, round ${s.round}${s.config.pinnedMaster ? ', pinned' : ''})`
      : s.role === 'candidate'
        ? `candidate (claiming epoch ${s.epoch + 1})`
        : s.masterId
          ? `peer of ${s.masterId} (epoch ${s.epoch}, round ${s.round})`
          : 'peer, no master heard yet';
  const rejected = Object.entries(s.counters.rejected).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const dropped = Object.entries(s.counters.dropped).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const lines = [
    `Node ID          : ${s.nodeId}`,
    `Role             : ${role}`,
    `Synchronized     : ${s.synced ? 'yes' : 'no'}`,
    `Group time       : ${isoNs(BigInt(s.groupTimeNs))}`,
    `Error bound      : ${s.boundState === undefined ? '-' : formatBound(s)}`,
    `Last offset      : ${dur(s.lastOffsetNs)}${s.lastDelayNs === null ? '' : ` (round trip ${mag(s.lastDelayNs)})`}`,
    `Last adjustment  : ${dur(s.lastAdjustmentNs)}`,
    `Frequency        : ${s.frequencyPpm >= 0 ? '+' : ''}${s.frequencyPpm.toFixed(3)} ppm`,
    `Clock            : ${s.clock.kind}${s.clock.state ? ` (${s.clock.state})` : ''}, ${s.clock.steps} step(s)${s.clock.foreignSteps ? `, ${s.clock.foreignSteps} by someone else` : ''}, slew remaining ${mag(s.clock.pendingNs)}, max slew ${s.clock.maxSlewPpm} ppm`,
    ...kernelLines(s),
    `Group            : ${s.config.group}:${s.config.port} on ${s.config.interface}, domain ${s.config.domain}, interval ${s.config.intervalMs} ms${s.config.authenticated ? ', authenticated' : ''}`,
    `Datagrams        : received ${s.counters.received}, sent ${s.counters.sent}, send errors ${s.counters.sendErrors}`,
    `Timestamps       : ${stamps(s)}`,
    `Rejected         : ${rejected}`,
    `Ignored          : ${dropped}`,
    `Faults           : ${faultLine(s)}`,
    `Membership       : ${membershipLine(s)}`,
  ];
  if (s.config.keyIds?.length) lines.push(`Keys             : ${s.config.keyIds.join(', ')} (signing with ${s.config.keyIds[0]}); reloads ${s.counters.reloads.ok} ok, ${s.counters.reloads.refused} refused`);
  if (s.config.metrics) lines.push(`Metrics          : http://${s.config.metrics}/metrics`);
  if (s.reference) lines.push(`Reference        : ${referenceLine(s.reference)}`);
  else if (s.masterReference) lines.push(`Reference        : the group's time follows an external reference or an upper group (${s.masterSteps ?? 0} step(s) from the top)`);
  if (s.role === 'master') {
    lines.push('', `Members (${s.members.length}):`, `  ${'Node'.padEnd(24)}${'Offset'.padStart(16)}${'Round trip'.padStart(16)}${'Last round'.padStart(12)}  Faulty`);
    for (const m of [...s.members].sort((a, b) => a.nodeId.localeCompare(b.nodeId, 'en', { numeric: true }))) {
      const faulty = m.faulty ? `  ${m.faulty} since round ${m.faultySinceRound}` : '';
      lines.push(`  ${m.nodeId.padEnd(24)}${dur(m.offsetNs).padStart(16)}${mag(m.delayNs).padStart(16)}${String(m.lastRound).padStart(12)}${faulty}`);
    }
  }
  return lines.join('\n');
}

/** What this node knows of faults: members named (on the master), and its own state. */
function faultLine(s: StatusJson): string {
  const f = s.faults;
  const parts: string[] = [];
  if (s.role === 'master') parts.push(f.members.length ? `${f.members.map((m) => `${m.nodeId} (${m.reason})`).join(', ')} faulty now, ${f.named} named so far` : `none now, ${f.named} named so far`);
  if (f.thisNode) parts.push('the master names this node faulty');
  if (f.cannotFollow) parts.push('this clock cannot follow its corrections (frequency beyond the limit)');
  const own = f.ownClock;
  if (own) parts.push(`own-clock-faulty (${own.fault}): ${own.action === 'serving' ? "serving the group's time in place of this clock" : 'stood down as master until this clock recovers'}`);
  return parts.join('; ') || 'none';
}

/** --reference: its state, why it is lost, and how far the group clock is from it. */
function referenceLine(r: NonNullable<StatusJson['reference']>): string {
  const state = r.state === 'following' ? 'followed' : r.state === 'returning' ? 'back, the group slewing to it' : `LOST (${r.why}); the group runs on its average`;
  return `${r.kind} ${state}; group clock − reference ${dur(r.offsetNs)}, maxerror ${mag(r.maxErrorNs)} (bound ${mag(r.maxErrorBoundNs)}), lost ${r.losses} time(s)`;
}
