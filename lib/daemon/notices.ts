/**
 * What the daemon logs and says of each notice of the engine's
 * (lib/core/types.ts Notice): debug lines for the round, the clock, the
 * election and the wire; warnings for what an operator must hear of
 * (faults, refusals, a full table). daemon.ts keeps its own bookkeeping of
 * the same notices (counters, the system clock's sync state) and calls
 * tell() after it.
 */
import type { Notice } from '../core/types.js';
import { formatDurationNs } from '../units.js';
import { MessageType } from '../wire/messages.js';
import { log, type Warn } from './log.js';
import { ReferenceLink } from './reference.js';

/** Notices that move the error bound or its state: ClockBound's segment follows at once, not at the next refresh. */
export function movesBound(n: Notice): boolean {
  return n.kind !== 'dropped' && n.kind !== 'measured' && n.kind !== 'member-joined' && n.kind !== 'member-left';
}

/** Logs or says n; pinnedMaster: this node runs with --master (its own clock's fault is worded for it). */
export function tell(n: Notice, say: { warn: Warn; info: Warn }, pinnedMaster: boolean): void {
  switch (n.kind) {
    case 'round':
      log.round('round %d/%d: average %s%s', n.epoch, n.round, formatDurationNs(n.averageNs), n.quorum ? '' : ' (no majority: following the master)');
      for (const r of n.table) {
        log.round('  %s offset %s ± %s delay %s adjustment %s%s%s', r.name, formatDurationNs(r.offsetNs), formatDurationNs(r.errorNs), formatDurationNs(r.delayNs), formatDurationNs(r.adjustmentNs), r.outlier ? ' outlier' : '', r.faulty ? ` faulty (${r.faulty})` : '');
      }
      return;
    case 'measured':
      return log.round('round %d: offset %s delay %s (best of %d)', n.round, formatDurationNs(n.offsetNs), formatDurationNs(n.delayNs), n.samples);
    case 'burst-failed':
      return log.round('round %d: no measurement: %s', n.round, n.why);
    case 'corrected':
      return log.clock('round %d/%d: adjustment %s, correction %s%s, frequency %s ppm', n.epoch, n.round, formatDurationNs(n.adjustmentNs), formatDurationNs(n.correctionNs), n.step ? ' (step)' : '', n.frequencyPpm.toFixed(3));
    case 'coarse-step':
      return log.clock('coarse step to the master: %s', formatDurationNs(n.correctionNs));
    case 'refused':
      return say.warn(`refused a correction of ${formatDurationNs(n.correctionNs)} in round ${n.round}: larger than --max-adjust ${formatDurationNs(n.maxAdjustNs)}`);
    case 'role':
      return log.election('%s in epoch %d (master %s): %s', n.role, n.epoch, n.masterName ?? 'none', n.why);
    case 'member-joined':
      return log.round('member %s joined', n.name);
    case 'member-left':
      return log.round('member %s left (%s)', n.name, n.why);
    case 'member-faulty':
      if (n.reason === null) return say.warn(`member ${n.name} recovered in round ${n.round}: it agrees with the group again`);
      return say.warn(
        `member ${n.name} is faulty (${n.reason}) in round ${n.round}: ` +
          (n.reason === 'outlier' ? 'its clock disagrees with the majority round after round' : 'its clock needs more frequency correction than the limit allows') +
          '; it no longer counts in the average',
      );
    case 'cannot-follow':
      if (!n.atLimit) return say.warn(`this clock follows its corrections again (estimate ${n.estimatePpm.toFixed(1)} ppm, group ${n.commonPpm.toFixed(1)} ppm)`);
      return say.warn(
        `this clock cannot follow its corrections: it needs ${(n.estimatePpm - n.commonPpm).toFixed(1)} ppm, beyond the frequency limit; its oscillator is faulty or another program is steering this clock`,
      );
    case 'own-clock':
      return n.fault
        ? say.warn(
            pinnedMaster
              ? `own-clock-faulty (${n.fault}) in round ${n.round}: this master's own clock cannot follow the group; it keeps serving, with the group's time (running ${n.ratePpm.toFixed(2)} ppm against the monotonic clock) in place of its own clock, which stays out of the average`
              : `own-clock-faulty (${n.fault}) in round ${n.round}: this master's own clock cannot follow the group; stepping down, and claiming no mastership until it recovers`,
          )
        : say.warn(`this node's own clock agrees with the group again (round ${n.round}): no longer named faulty`);
    case 'self-outlier':
      return n.outlier
        ? say.warn(`this master's own clock disagrees with the majority of the group (round ${n.round}): the group corrects it, but if its oscillator is faulty, run the group without --master here so that another node leads`)
        : say.warn(`this master's own clock agrees with the group again (round ${n.round})`);
    case 'table':
      if (n.inTable) return say.warn(`this node is in the master's table again (round ${n.round})`);
      return say.warn(
        n.why === 'table-full'
          ? `the master's table is full (its --max-members) and this node is not in it (round ${n.round}): not synchronized until a place frees`
          : `this node's reports reach no table of the master's (round ${n.round}): not synchronized`,
      );
    case 'member-limit':
      return n.refusing
        ? say.warn(`the member table is full (--max-members ${n.max}): refusing ${n.refused} node(s) in round ${n.round}; they are counted in the status and the metrics (members_refused)`)
        : say.warn(`the member table has room again (--max-members ${n.max}, round ${n.round})`);
    case 'named-faulty':
      return n.faulty ? say.warn(`the master names this node faulty in round ${n.round}`) : say.warn(`the master no longer names this node faulty (round ${n.round})`);
    case 'reference':
      return n.state === 'lost' ? say.warn(ReferenceLink.message(n)) : say.info(ReferenceLink.message(n));
    case 'dropped':
      return log.wire('ignored %s from %s:%d: %s', MessageType[n.type] ?? n.type, n.from.address, n.from.port, n.reason);
  }
}
