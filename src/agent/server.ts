/**
 * The control socket: a Unix socket in the home, mode 0600, speaking framed MessagePack
 * (./frame.ts). A client sends `{id, method, params}` and gets `{id, progress}` events,
 * then `{id, result}` or `{id, error: {code, message}}`; `{id, cancel: true}` cancels
 * its request's job, and a client that disconnects cancels its foreground jobs
 * (background ones go on). A misbehaving client loses its connection, nothing else.
 */
import fs from 'node:fs';
import net from 'node:net';
import { asPlexusError } from '../errors.js';
import type { AgentCore } from './core.js';
import { encodeFrame, FrameDecoder } from './frame.js';
import { handleRequest } from './methods.js';

/** Requests one client may have in flight at once. */
const MAX_IN_FLIGHT = 64;
/** Clients connected at once. */
const MAX_CLIENTS = 256;

interface Request {
  id: number;
  method: string;
  params: Record<string, unknown>;
}

function isRequest(m: unknown): m is Request {
  const r = m as Partial<Request> | null;
  return typeof r === 'object' && r !== null && typeof r.id === 'number' && typeof r.method === 'string' && (r.params === undefined || (typeof r.params === 'object' && r.params !== null));
}

/** The listening control socket and its clients. */
export interface ControlServer {
  server: net.Server;
  clients: Set<net.Socket>;
  path: string;
}

/** Listens on `socketPath` (replacing a stale socket file) and serves control requests. */
export async function listenControl(core: AgentCore, socketPath: string): Promise<ControlServer> {
  try {
    fs.unlinkSync(socketPath);
  } catch {
    // No stale socket.
  }
  const clients = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    clients.add(sock);
    sock.once('close', () => clients.delete(sock));
    serveClient(core, sock);
  });
  server.maxConnections = MAX_CLIENTS;
  // The socket is born 0600: no moment exists when another user could connect.
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(umask);
  }
  fs.chmodSync(socketPath, 0o600);
  server.on('error', (e) => core.log.event('control-error', { error: e }));
  return { server, clients, path: socketPath };
}

function serveClient(core: AgentCore, sock: net.Socket): void {
  const decoder = new FrameDecoder();
  const inFlight = new Map<number, AbortController>();
  let closed = false;
  const send = (m: unknown): void => {
    if (closed) return;
    try {
      sock.write(encodeFrame(m));
    } catch (e) {
      // A result too large to frame is the handler's bug; the client hears of it.
      const err = asPlexusError(e);
      if ((m as { id?: unknown }).id !== undefined) sock.write(encodeFrame({ id: (m as { id: unknown }).id, error: { code: err.code, message: err.message } }));
    }
  };
  const drop = (why: string): void => {
    if (closed) return;
    closed = true;
    for (const a of inFlight.values()) a.abort();
    inFlight.clear();
    core.log.event('control-client-dropped', { why });
    sock.destroy();
  };
  sock.on('error', () => drop('socket error'));
  sock.on('close', () => {
    closed = true;
    for (const a of inFlight.values()) a.abort();
    inFlight.clear();
  });
  sock.on('data', (chunk: Buffer) => {
    let messages: unknown[];
    try {
      messages = decoder.push(chunk);
    } catch (e) {
      drop((e as Error).message);
      return;
    }
    for (const m of messages) {
      const c = m as { id?: unknown; cancel?: unknown };
      if (typeof c === 'object' && c !== null && c.cancel === true && typeof c.id === 'number') {
        inFlight.get(c.id)?.abort();
        continue;
      }
      if (!isRequest(m)) {
        drop('malformed control request');
        return;
      }
      if (inFlight.size >= MAX_IN_FLIGHT || inFlight.has(m.id)) {
        send({ id: m.id, error: { code: 'E_BUSY', message: `too many control requests in flight (at most ${MAX_IN_FLIGHT} per client)` } });
        continue;
      }
      const abort = new AbortController();
      inFlight.set(m.id, abort);
      let lastProgress = 0;
      const onProgress = (e: { operation: string; done: number; total: number }): void => {
        const now = Date.now();
        if (now - lastProgress < 100 && e.done < e.total) return;
        lastProgress = now;
        send({ id: m.id, progress: { operation: e.operation, done: e.done, total: e.total } });
      };
      void (async () => {
        try {
          const onLog = (line: string): void => send({ id: m.id, log: String(line) });
          const result = await handleRequest(core, m.method, m.params ?? {}, { onProgress, onLog, signal: abort.signal });
          send({ id: m.id, result: result ?? null });
        } catch (e) {
          const err = asPlexusError(e);
          if (err.code === 'E_INTERNAL') core.log.event('internal-error', { method: m.method, error: err.message, stack: (err.cause as Error | undefined)?.stack });
          send({ id: m.id, error: { code: err.code, message: err.message } });
        } finally {
          inFlight.delete(m.id);
        }
      })();
    }
  });
}

/** Closes the control socket and removes its file. */
export async function closeControl(c: ControlServer): Promise<void> {
  const closed = new Promise<void>((resolve) => c.server.close(() => resolve()));
  for (const s of c.clients) s.destroy();
  await closed;
  try {
    fs.unlinkSync(c.path);
  } catch {
    // Already gone.
  }
}
