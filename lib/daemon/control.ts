/**
 * The control socket: a Unix stream socket, mode 0600, local only. A client
 * writes one command line ("status" or "now") and reads one JSON line back.
 */
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export type ControlHandler = (command: string) => unknown;

/** Where the control socket lives unless --control says otherwise. */
export function defaultControlPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RUNTIME_DIRECTORY) return join(env.RUNTIME_DIRECTORY.split(':')[0]!, 'berkeleyd.sock');
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'berkeleyd.sock');
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return join(tmpdir(), `berkeleyd-${uid}.sock`);
}

export class ControlError extends Error {}

export class ControlServer {
  private server: Server | null = null;

  constructor(
    readonly path: string,
    private readonly handler: ControlHandler,
  ) {}

  async start(): Promise<void> {
    if (existsSync(this.path)) {
      // A socket file left by a daemon that died: remove it; one that answers: refuse.
      if (await answers(this.path)) throw new ControlError(`control socket ${this.path} is in use by a running daemon`);
      unlinkSync(this.path);
    }
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const server = createServer((conn) => {
      let buf = '';
      let answered = false;
      conn.setEncoding('utf8');
      conn.on('error', () => conn.destroy());
      conn.setTimeout(2000, () => conn.destroy());
      conn.on('data', (chunk: string) => {
        buf += chunk;
        if (buf.length > 256) return conn.destroy();
        const nl = buf.indexOf('\n');
        if (nl < 0 || answered) return;
        answered = true;
        // The handler may answer now or with a promise.
        Promise.resolve()
          .then(() => this.handler(buf.slice(0, nl).trim()))
          .catch((err: Error) => ({ error: err.message }))
          .then((reply) => {
            if (!conn.destroyed) conn.end(JSON.stringify(reply) + '\n');
          });
      });
    });
    this.server = server;
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.path, () => resolve());
      });
    } catch (err) {
      throw new ControlError(`cannot create control socket ${this.path}: ${(err as Error).message}`);
    } finally {
      process.umask(old);
    }
    chmodSync(this.path, 0o600);
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}

/** Send one command, get the parsed JSON reply. Rejects with a readable message. */
export function query(path: string, command: string, timeoutMs = 2000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new ControlError(`no answer from ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(command + '\n'));
    conn.on('data', (d: string) => (buf += d));
    conn.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = err.code === 'ENOENT' ? 'no such socket (is the daemon running? see --control)' : err.code === 'ECONNREFUSED' ? 'nobody listening (the daemon is not running)' : err.code === 'EACCES' ? 'permission denied' : err.message;
      reject(new ControlError(`cannot reach the daemon at ${path}: ${why}`));
    });
    conn.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf));
      } catch {
        reject(new ControlError(`bad answer from ${path}`));
      }
    });
  });
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    c.on('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
}
