/**
 * The CLI's side of the control socket: finds a running agent of a home and asks it to
 * do work. Finding none costs one stat (no socket file) or one refused connect (a stale
 * socket left by a killed agent), so commands without an agent start as fast as before.
 */
import fs from 'node:fs';
import net from 'node:net';
import { PlexusError } from '../errors.js';
import type { ProgressCallback } from '../progress.js';
import { encodeFrame, FrameDecoder } from './frame.js';
import { agentPaths } from './paths.js';

/** How a request is made. */
export interface CallOptions {
  onProgress?: ProgressCallback;
  /** Lines the agent sends for the user's stderr while the request runs. */
  onLog?: (line: string) => void;
  /** Aborting cancels the request's job in the agent (Ctrl-C). */
  signal?: AbortSignal;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  onProgress?: ProgressCallback;
  onLog?: (line: string) => void;
}

/** A message from the agent. */
interface Reply {
  id?: number;
  progress?: { operation: string; done: number; total: number };
  log?: string;
  result?: unknown;
  error?: { code: string; message: string };
}

/** A connection to a running agent. */
export class AgentClient {
  private next = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly decoder = new FrameDecoder();
  private failure?: Error;

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (chunk: Buffer) => {
      let messages: unknown[];
      try {
        messages = this.decoder.push(chunk);
      } catch (e) {
        this.fail(e as Error);
        return;
      }
      for (const m of messages) this.receive(m as Reply);
    });
    sock.on('error', (e) => this.fail(new PlexusError('E_AGENT', `lost the connection to the agent: ${e.message}`)));
    sock.on('close', () => this.fail(new PlexusError('E_AGENT', 'the agent closed the connection (it stopped or crashed); what it acknowledged is kept')));
  }

  /** Connects to the agent of the home at `homeDir`; undefined when none runs. */
  static async connect(homeDir: string, timeoutMs = 2000): Promise<AgentClient | undefined> {
    const { socket } = agentPaths(homeDir);
    if (!fs.existsSync(socket)) return undefined;
    const sock = net.connect(socket);
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        resolve(true);
      });
      sock.once('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (!ok) {
      // A socket file nobody listens on: a killed agent's. In-process it is.
      sock.destroy();
      return undefined;
    }
    return new AgentClient(sock);
  }

  /** Sends one request and waits for its result. Errors keep the agent's code. */
  call<T = unknown>(method: string, params: Record<string, unknown> = {}, opts: CallOptions = {}): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.pending.has(id)) this.sock.write(encodeFrame({ id, cancel: true }));
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        resolve: (v) => {
          opts.signal?.removeEventListener('abort', onAbort);
          resolve(v as T);
        },
        reject: (e) => {
          opts.signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
        onProgress: opts.onProgress,
        onLog: opts.onLog,
      });
      this.sock.write(encodeFrame({ id, method, params }));
    });
  }

  /** Closes the connection. */
  close(): void {
    this.sock.end();
    this.sock.unref();
  }

  private receive(m: Reply): void {
    const p = m.id === undefined ? undefined : this.pending.get(m.id);
    if (!p) return;
    if (m.progress) {
      p.onProgress?.(m.progress);
      return;
    }
    if (m.log !== undefined) {
      p.onLog?.(m.log);
      return;
    }
    this.pending.delete(m.id!);
    if (m.error) p.reject(new PlexusError(String(m.error.code), String(m.error.message)));
    else p.resolve(m.result);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }
}
