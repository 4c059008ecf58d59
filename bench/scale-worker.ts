/**
 * The generator's process (forked by bench/scale.ts): runs one Generator
 * until told to stop, its parent goes away, or config.maxRunMs passes.
 */
import { loadSocketCalls } from '../lib/net/ffi.js';
import { udpDrops } from './proc.js';
import { Generator } from './scale-gen.js';
import type { FromGen, ToGen } from './scale-types.js';

const say = (m: FromGen): void => void process.send?.(m);
let gen: Generator | null = null;

function end(code: number): void {
  gen?.stop();
  gen = null;
  process.exit(code);
}

process.on('disconnect', () => end(0));
process.on('message', (m: ToGen) => {
  if (m.cmd === 'start' && !gen) {
    const g = new Generator(m.config, (s) => say({ ev: 'sync', ...s }), (r) => say({ ev: 'round', round: r }));
    gen = g;
    setTimeout(() => end(3), m.config.maxRunMs).unref();
    g.start().then(
      (ports) => say({ ev: 'ready', ports, directSend: loadSocketCalls() !== null }),
      (err: Error) => {
        say({ ev: 'error', message: `generator: ${err.message}` });
        end(2);
      },
    );
  } else if (m.cmd === 'stop' && gen) {
    const g = gen;
    gen = null;
    // The sockets' kernel drops, read while they are still open.
    const drops = udpDrops('self');
    g.stop();
    const cpu = process.cpuUsage();
    process.send!({ ev: 'done', cpuUs: cpu.user + cpu.system, drops, foreign: g.foreign, sendErrors: g.sendErrors, rssMb: process.memoryUsage().rss / 2 ** 20 } satisfies FromGen, () => process.exit(0));
  }
});
