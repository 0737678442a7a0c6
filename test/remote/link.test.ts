/**
 * The peer link in-process: authenticated, pipelined requests over TCP; refusals and
 * drops logged; a misbehaving connection dropped alone; failures of the link and
 * timeouts surfacing as E_LINK; large frames intact.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PlexusError } from '../../src/errors.js';
import { HandshakeClient, PROTOCOL } from '../../src/remote/handshake.js';
import { listenPeers, MAX_PEER_FRAME, PeerClient, type PeerServer } from '../../src/remote/link.js';
import { encodePeerFrame, PeerFrameDecoder } from '../../src/remote/peer-frame.js';

type LogLine = { event: string } & Record<string, unknown>;

const KEY = crypto.randomBytes(32);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const servers: PeerServer[] = [];
const clients: PeerClient[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(key: () => Buffer = () => KEY) {
  const log: LogLine[] = [];
  const server = await listenPeers(
    '127.0.0.1:0',
    key,
    'B',
    async (method, params) => {
      switch (method) {
        case 'echo':
          return params;
        case 'delay':
          await sleep(params.ms as number);
          return { i: params.i };
        case 'fail':
          throw new PlexusError('E_NOENT', 'no volume named x at site B');
        case 'crash':
          throw new Error('boom');
        case 'never':
          return new Promise(() => {});
        default:
          throw new PlexusError('E_INVALID', `unknown method ${method}`);
      }
    },
    (event, fields) => log.push({ event, ...fields }),
  );
  servers.push(server);
  return { server, log };
}

async function connect(address: string, key = KEY, timeoutMs?: number): Promise<PeerClient> {
  const c = await PeerClient.connect(address, key, 'A', timeoutMs);
  clients.push(c);
  return c;
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** One frame in the link's wire form. */
function encodeFrame(envelope: unknown, max = MAX_PEER_FRAME): Buffer {
  return Buffer.concat(encodePeerFrame(envelope, undefined, max));
}

function rawSocket(address: string): Promise<net.Socket> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: host!, port: Number(port) }, () => resolve(s));
    s.once('error', reject);
    sockets.push(s);
  });
}

/** A socket that completed the handshake by hand, to send what PeerClient never would. */
async function authenticatedSocket(address: string): Promise<net.Socket> {
  const s = await rawSocket(address);
  const hs = new HandshakeClient(KEY, 'raw');
  const d = new PeerFrameDecoder(4096);
  await new Promise<void>((resolve, reject) => {
    s.on('data', (chunk) => {
      for (const { envelope } of d.push(chunk)) {
        const step = hs.receive(envelope);
        if (step.send) s.write(encodeFrame(step.send, 4096));
        if (step.refused) reject(step.refused);
        if (step.ready) resolve();
      }
    });
    s.write(encodeFrame(hs.start().send, 4096));
  });
  s.removeAllListeners('data');
  return s;
}

function closed(s: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) resolve();
    s.once('close', () => resolve());
  });
}

async function rejection(p: Promise<unknown>): Promise<PlexusError> {
  try {
    await p;
  } catch (e) {
    return e as PlexusError;
  }
  throw new Error('expected a rejection');
}

describe('peer link', () => {
  it('answers an authenticated peer and names both sites', async () => {
    const { server, log } = await serve();
    const c = await connect(server.address);
    expect(c.peer).toEqual({ site: 'B', version: 1 });
    expect(await c.call('echo', { a: 1, s: 'x' })).toEqual({ a: 1, s: 'x' });
    expect(log.find((l) => l.event === 'peer-connected')).toMatchObject({ peer: 'A', version: 1 });
  });

  it('resolves 200 pipelined calls each with its own result, whatever order they finish in', async () => {
    const { server } = await serve();
    const c = await connect(server.address);
    const calls = Array.from({ length: 200 }, (_, i) => c.call<{ i: number }>('delay', { i, ms: (i * 37) % 50 }));
    const results = await Promise.all(calls);
    expect(results.map((r) => r.i)).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it("passes a handler's error to the caller with its code; an unexpected one as E_INTERNAL, logged", async () => {
    const { server, log } = await serve();
    const c = await connect(server.address);
    const e = await rejection(c.call('fail', {}));
    expect(e).toBeInstanceOf(PlexusError);
    expect(e.code).toBe('E_NOENT');
    expect(e.message).toContain('no volume named x at site B');
    const crash = await rejection(c.call('crash', {}));
    expect(crash.code).toBe('E_INTERNAL');
    expect(crash.message).toContain('boom');
    expect(log.some((l) => l.event === 'internal-error' && l.method === 'crash')).toBe(true);
    // The link is still good.
    expect(await c.call('echo', { ok: true })).toEqual({ ok: true });
  });

  it('refuses a wrong key with E_AUTH, and the server logs the refusal', async () => {
    const { server, log } = await serve();
    const e = await rejection(connect(server.address, crypto.randomBytes(32)));
    expect(e.code).toBe('E_AUTH');
    expect(e.message).toContain('does not hold');
    await until('peer-refused', () => log.some((l) => l.event === 'peer-refused'));
    expect(log.some((l) => l.event === 'peer-connected')).toBe(false);
  });

  it('refuses everyone with E_AUTH while the site has no key', async () => {
    const { server, log } = await serve(() => {
      throw new PlexusError('E_STATE', 'home has no peer key');
    });
    const e = await rejection(connect(server.address));
    expect(e.code).toBe('E_AUTH');
    expect(e.message).toContain('no peer key yet');
    await until('peer-refused', () => log.some((l) => l.event === 'peer-refused'));
  });

  it('drops a peer that connects and says nothing once the handshake time is up', async () => {
    const { server, log } = await serve();
    const s = await rawSocket(server.address);
    const start = Date.now();
    await closed(s);
    expect(Date.now() - start).toBeGreaterThanOrEqual(4500);
    expect(log.find((l) => l.event === 'peer-dropped')).toMatchObject({ why: 'handshake timed out' });
  }, 15_000);

  it('drops only the connection that sends an oversized or non-MessagePack frame or a malformed request', async () => {
    const { server, log } = await serve();
    const good = await connect(server.address);
    const cases: Array<[string, Buffer, string]> = [
      ['oversized', Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]), 'larger than'],
      [
        'just over the limit',
        (() => {
          const b = Buffer.alloc(4);
          b.writeUInt32BE(MAX_PEER_FRAME + 1);
          return b;
        })(),
        'larger than',
      ],
      ['too short', Buffer.from([0, 0, 0, 2, 0x68, 0x65]), 'too short'],
      ['envelope past the frame', Buffer.from([0, 0, 0, 6, 0, 0, 0, 9, 0x80, 0x80]), 'does not fit'],
      ['not MessagePack', Buffer.from([0, 0, 0, 6, 0, 0, 0, 2, 0xc1, 0xc1]), 'not valid MessagePack'],
      ['not a map', encodeFrame(42), 'not a map'],
      ['not a request', encodeFrame({ id: 'x', method: 3 }), 'malformed peer request'],
      ['request without a method', encodeFrame({ id: 1, params: {} }), 'malformed peer request'],
    ];
    for (const [name, bytes, why] of cases) {
      const s = await authenticatedSocket(server.address);
      s.write(bytes);
      await closed(s);
      await until(name, () => log.some((l) => l.event === 'peer-dropped' && String(l.why).includes(why)));
      expect(await good.call('echo', { after: name })).toEqual({ after: name });
    }
    expect(good.closed).toBe(false);
  });

  it('survives hostile handshake messages and keeps serving', async () => {
    const { server, log } = await serve();
    const nonce = crypto.randomBytes(32);
    const hostile = [
      // Its refusal would list every offered version: larger than a handshake frame.
      encodeFrame({ t: 'hello', proto: PROTOCOL, versions: new Array(1900).fill(2), site: 'x', nonce }, 4096),
      // A type String() cannot print.
      encodeFrame({ t: { toString: 0, valueOf: 0 } }, 4096),
      encodeFrame([1, 2, 3], 4096),
      encodeFrame(null, 4096),
      Buffer.from([0, 0, 0x10, 0x01]),
      Buffer.from('GET / HTTP/1.0\r\n\r\n'),
    ];
    for (const bytes of hostile) {
      const s = await rawSocket(server.address);
      s.on('error', () => {});
      // Read, as any peer does: the server half-closes after its refusal.
      s.resume();
      s.write(bytes);
      await closed(s);
    }
    await until('every refusal logged', () => log.filter((l) => l.event === 'peer-refused' || l.event === 'peer-dropped').length >= hostile.length);
    expect(log.find((l) => String(l.why).startsWith('no common protocol version'))?.why).toMatch(/peer offers 2, 2, .*\.\.\./);
    const c = await connect(server.address);
    expect(await c.call('echo', { still: 'here' })).toEqual({ still: 'here' });
  });

  it('fails calls in flight with E_LINK when the server closes, and later calls too', async () => {
    const { server } = await serve();
    const c = await connect(server.address);
    const closes: PlexusError[] = [];
    c.onClose((e) => closes.push(e));
    const inFlight = [c.call('never', {}), c.call('delay', { i: 1, ms: 5000 })];
    await sleep(50);
    await server.close();
    for (const p of inFlight) expect((await rejection(p)).code).toBe('E_LINK');
    expect(c.closed).toBe(true);
    expect(closes).toHaveLength(1);
    expect((await rejection(c.call('echo', {}))).code).toBe('E_LINK');
  });

  it('fails a call the server does not answer in time with E_LINK, and the link goes on', async () => {
    const { server } = await serve();
    const c = await connect(server.address);
    const start = Date.now();
    const e = await rejection(c.call('never', {}, 150));
    expect(e.code).toBe('E_LINK');
    expect(e.message).toContain('did not answer never within 150 ms');
    expect(Date.now() - start).toBeGreaterThanOrEqual(140);
    // A late answer to a timed-out call is ignored; the next call gets its own.
    const late = c.call('delay', { i: 7, ms: 300 }, 100);
    expect((await rejection(late)).code).toBe('E_LINK');
    await sleep(300);
    expect(await c.call('echo', { n: 8 })).toEqual({ n: 8 });
  });

  it('cannot reach a site nobody listens at: E_LINK', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const e = await rejection(connect(`127.0.0.1:${port}`));
    expect(e.code).toBe('E_LINK');
    expect(() => PeerClient.connect('not an address', KEY, 'A')).toThrow(PlexusError);
  });

  it('round-trips 8 MiB Buffer params intact, several at once', async () => {
    const { server } = await serve();
    const c = await connect(server.address);
    const blobs = [1, 2, 3].map(() => crypto.randomBytes(8 << 20));
    const results = await Promise.all(blobs.map((data, i) => c.call<{ i: number; data: Uint8Array }>('echo', { i, data })));
    results.forEach((r, i) => {
      expect(r.i).toBe(i);
      expect(Buffer.from(r.data).equals(blobs[i]!)).toBe(true);
    });
  }, 30_000);
});
