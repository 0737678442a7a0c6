/**
 * The link between two sites: TCP, framed (./peer-frame.ts), the handshake of
 * ./handshake.ts, then requests from the connecting site (`{id, method, params}`)
 * answered in any order (`{id, result}` or `{id, error: {code, message}}`), pipelined.
 * Journal batches do not cross it: they go on the group's data channel
 * (crates/replica/src/channel.rs), which this link negotiates.
 */
import net from 'node:net';
import { asPlexusError, PlexusError } from '../errors.js';
import { HandshakeClient, HandshakeServer, type PeerIdentity } from './handshake.js';
import { encodePeerFrame, type PeerFrame, PeerFrameDecoder } from './peer-frame.js';

/** The largest frame on a link: a region read back by a reverse resync (4 MiB) or a member's dirty words, with the envelope. */
export const MAX_PEER_FRAME = 17 << 20;
/** Frames allowed before the handshake ends. */
const MAX_HANDSHAKE_FRAME = 4096;
/** A peer must finish the handshake within this. */
const HANDSHAKE_MS = 5000;
/** Peers connected at once to one site. */
const MAX_PEERS = 64;

/** `HOST:PORT` (IPv6 in brackets) as parts; E_INVALID otherwise. */
export function parseAddress(spec: string, what = 'peer address'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(spec);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new PlexusError('E_INVALID', `${what} '${spec}' must be HOST:PORT, e.g. 127.0.0.1:7070`);
  return { host: m[1] ?? m[2]!, port };
}

/** Writes one frame (its parts corked together). */
function writeFrame(sock: net.Socket, envelope: unknown, payload?: Buffer, max = MAX_PEER_FRAME): void {
  const parts = encodePeerFrame(envelope, payload, max);
  sock.cork();
  for (const b of parts) sock.write(b);
  sock.uncork();
}

/** A message's one Buffer travels as the frame's payload, outside the MessagePack. */
const PAYLOAD_KEY = 'bytes';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

/** The connecting side of a link, after a successful handshake. */
export class PeerClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedWith?: PlexusError;
  private readonly closeListeners: Array<(e: PlexusError) => void> = [];

  private constructor(
    private readonly sock: net.Socket,
    readonly peer: PeerIdentity,
    readonly address: string,
  ) {}

  /** Connects and authenticates. E_LINK when the site cannot be reached in `timeoutMs`, E_AUTH when a key is refused. */
  static connect(address: string, key: Buffer, site: string, timeoutMs = 5000): Promise<PeerClient> {
    const { host, port } = parseAddress(address);
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host, port });
      sock.setNoDelay(true);
      const decoder = new PeerFrameDecoder(MAX_HANDSHAKE_FRAME);
      const hs = new HandshakeClient(key, site);
      let settled = false;
      const fail = (e: PlexusError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.destroy();
        reject(e);
      };
      const timer = setTimeout(() => fail(new PlexusError('E_LINK', `remote site ${address} did not complete the handshake within ${timeoutMs} ms`)), timeoutMs);
      sock.once('error', (e) => fail(new PlexusError('E_LINK', `cannot reach remote site ${address}: ${e.message}`, { cause: e })));
      sock.once('close', () => fail(new PlexusError('E_LINK', `remote site ${address} closed the link during the handshake`)));
      sock.once('connect', () => writeFrame(sock, hs.start().send, undefined, MAX_HANDSHAKE_FRAME));
      const onData = (chunk: Buffer): void => {
        let messages: PeerFrame[];
        try {
          messages = decoder.push(chunk);
        } catch (e) {
          fail(asPlexusError(e));
          return;
        }
        for (const { envelope } of messages) {
          const step = hs.receive(envelope);
          if (step.refused) {
            fail(step.refused);
            return;
          }
          if (step.send) writeFrame(sock, step.send, undefined, MAX_HANDSHAKE_FRAME);
          if (step.ready) {
            settled = true;
            clearTimeout(timer);
            sock.removeAllListeners('data');
            sock.removeAllListeners('error');
            sock.removeAllListeners('close');
            const client = new PeerClient(sock, step.ready, address);
            decoder.relimit(MAX_PEER_FRAME);
            client.attach(decoder);
            resolve(client);
            return;
          }
        }
      };
      sock.on('data', onData);
    });
  }

  private attach(decoder: PeerFrameDecoder): void {
    this.sock.on('data', (chunk: Buffer) => {
      let messages: PeerFrame[];
      try {
        messages = decoder.push(chunk);
      } catch (e) {
        this.shut(asPlexusError(e));
        return;
      }
      for (const { envelope, payload } of messages) {
        const r = envelope as { id?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } };
        const p = typeof r?.id === 'number' ? this.pending.get(r.id) : undefined;
        if (!p) continue;
        this.pending.delete(r.id as number);
        clearTimeout(p.timer);
        if (r.error) p.reject(new PlexusError(typeof r.error.code === 'string' ? r.error.code : 'E_LINK', `remote site: ${String(r.error.message ?? 'request failed')}`));
        else p.resolve(payload ?? r.result);
      }
    });
    this.sock.on('error', (e) => this.shut(new PlexusError('E_LINK', `link to ${this.address} failed: ${e.message}`, { cause: e })));
    this.sock.on('close', () => this.shut(new PlexusError('E_LINK', `link to ${this.address} closed`)));
  }

  /** Sends one request; E_LINK when the link fails or `timeoutMs` passes first. */
  call<T>(method: string, params: Record<string, unknown>, timeoutMs = 30_000): Promise<T> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const p: Pending = { resolve: resolve as (v: unknown) => void, reject };
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new PlexusError('E_LINK', `remote site ${this.address} did not answer ${method} within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.pending.set(id, p);
      try {
        const bytes = params[PAYLOAD_KEY];
        if (Buffer.isBuffer(bytes)) {
          const { [PAYLOAD_KEY]: _, ...rest } = params;
          writeFrame(this.sock, { id, method, params: rest }, bytes);
        } else writeFrame(this.sock, { id, method, params });
      } catch (e) {
        this.pending.delete(id);
        clearTimeout(p.timer);
        reject(asPlexusError(e));
      }
    });
  }

  /** Bytes queued on the socket (the shipper stops adding past a window). */
  get queuedBytes(): number {
    return this.sock.writableLength;
  }

  /** Whether the link has failed or was closed. */
  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Told once, when the link fails or closes. */
  onClose(fn: (e: PlexusError) => void): void {
    if (this.closedWith) fn(this.closedWith);
    else this.closeListeners.push(fn);
  }

  /** Closes the link; calls in flight fail with `why`. */
  close(why = 'closed by this site'): void {
    this.shut(new PlexusError('E_LINK', `link to ${this.address} ${why}`));
  }

  private shut(e: PlexusError): void {
    if (this.closedWith) return;
    this.closedWith = e;
    this.sock.destroy();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.pending.clear();
    for (const fn of this.closeListeners.splice(0)) fn(e);
  }
}

/** One authenticated peer connection, as request handlers see it. */
export interface PeerConnection {
  peer: PeerIdentity;
  remoteAddress: string;
  /** Told when the connection ends. */
  onClose(fn: () => void): void;
  /** Ends the connection. */
  close(): void;
}

/** Answers one request of an authenticated peer. */
export type PeerHandler = (method: string, params: Record<string, unknown>, conn: PeerConnection) => unknown;

/** The listening side. */
export interface PeerServer {
  server: net.Server;
  address: string;
  close(): Promise<void>;
}

/** Listens for peers at `address`; refusals and drops are told to `log`. */
export async function listenPeers(address: string, key: () => Buffer, site: string, handler: PeerHandler, log: (event: string, fields: Record<string, unknown>) => void): Promise<PeerServer> {
  const { host, port } = parseAddress(address, 'listen address');
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
    servePeer(sock, key, site, handler, log);
  });
  server.maxConnections = MAX_PEERS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new PlexusError('E_LINK', `cannot listen for peers on ${address}: ${e.message}`, { cause: e })));
    server.listen({ host, port }, () => resolve());
  });
  server.on('error', (e) => log('peer-listen-error', { error: e.message }));
  const a = server.address() as net.AddressInfo;
  return {
    server,
    address: a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

function servePeer(sock: net.Socket, key: () => Buffer, site: string, handler: PeerHandler, log: (event: string, fields: Record<string, unknown>) => void): void {
  const from = `${sock.remoteAddress}:${sock.remotePort}`;
  sock.setNoDelay(true);
  const decoder = new PeerFrameDecoder(MAX_HANDSHAKE_FRAME);
  let hs: HandshakeServer | undefined;
  let conn: (PeerConnection & { closers: Array<() => void> }) | undefined;
  // Challenged and not yet told why it ended: a client refuses a server's proof made
  // with another key by closing, so this side would otherwise never log a wrong key.
  let challenged = false;
  const drop = (why: string): void => {
    challenged = false;
    log('peer-dropped', { from, peer: conn?.peer.site, why });
    sock.destroy();
  };
  const timer = setTimeout(() => drop('handshake timed out'), HANDSHAKE_MS);
  sock.on('error', () => sock.destroy());
  sock.on('close', () => {
    clearTimeout(timer);
    if (challenged && !conn) log('peer-refused', { from, why: "the peer closed the link after the challenge: it does not hold this site's key" });
    for (const fn of conn?.closers.splice(0) ?? []) fn();
  });
  try {
    hs = new HandshakeServer(key(), site);
  } catch (e) {
    // No key at this site: nobody may connect.
    writeFrame(sock, { t: 'refused', reason: 'the remote site has no peer key yet' }, undefined, MAX_HANDSHAKE_FRAME);
    sock.end();
    log('peer-refused', { from, why: asPlexusError(e).message });
    return;
  }
  sock.on('data', (chunk: Buffer) => {
    let messages: PeerFrame[];
    try {
      messages = decoder.push(chunk);
    } catch (e) {
      drop(asPlexusError(e).message);
      return;
    }
    for (const { envelope: m, payload } of messages) {
      if (!conn) {
        let step: ReturnType<HandshakeServer['receive']>;
        try {
          step = hs!.receive(m);
          if (step.send) writeFrame(sock, step.send, undefined, MAX_HANDSHAKE_FRAME);
        } catch (e) {
          drop(`handshake failed: ${asPlexusError(e).message}`);
          return;
        }
        challenged = step.send?.t === 'challenge';
        if (step.refused) {
          log('peer-refused', { from, why: step.refused.message });
          // The refusal reaches the peer, then the slot is freed whether it reads or not.
          clearTimeout(timer);
          challenged = false;
          sock.end();
          setTimeout(() => sock.destroy(), 1000).unref();
          return;
        }
        if (step.ready) {
          clearTimeout(timer);
          decoder.relimit(MAX_PEER_FRAME);
          const closers: Array<() => void> = [];
          conn = { peer: step.ready, remoteAddress: from, closers, onClose: (fn) => closers.push(fn), close: () => sock.destroy() };
          log('peer-connected', { from, peer: step.ready.site, version: step.ready.version });
        }
        continue;
      }
      const r = m as { id?: unknown; method?: unknown; params?: unknown };
      if (typeof r.id !== 'number' || typeof r.method !== 'string' || (r.params !== undefined && (typeof r.params !== 'object' || r.params === null || Array.isArray(r.params)))) {
        drop('malformed peer request');
        return;
      }
      const id = r.id;
      const c = conn;
      const params = { ...((r.params ?? {}) as Record<string, unknown>) };
      if (payload) params[PAYLOAD_KEY] = payload;
      void (async () => {
        try {
          const result = await handler(r.method as string, params, c);
          if (sock.destroyed) return;
          // A Buffer answer (a region read back) is the frame's payload.
          if (Buffer.isBuffer(result)) writeFrame(sock, { id, result: null }, result);
          else writeFrame(sock, { id, result: result ?? null });
        } catch (e) {
          const err = asPlexusError(e);
          if (err.code === 'E_INTERNAL') log('internal-error', { method: r.method, error: err.message });
          if (!sock.destroyed) writeFrame(sock, { id, error: { code: err.code, message: err.message } });
        }
      })();
    }
  });
}
