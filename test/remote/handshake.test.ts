/**
 * The peer handshake as a pure state machine: mutual proof of the shared key, refusals
 * with the message to send, order, replay, and arbitrary messages never throwing.
 */
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder } from '../../src/agent/frame.js';
import type { PlexusError } from '../../src/errors.js';
import { HandshakeClient, HandshakeServer, type HandshakeStep, PROTOCOL, VERSIONS } from '../../src/remote/handshake.js';

type Msg = Record<string, unknown>;

const KEY = Buffer.alloc(32, 0x5a);
const OTHER_KEY = Buffer.alloc(32, 0xa5);

/** Through the wire codec, as the link carries it. */
function wire(m: Msg | undefined): Msg {
  expect(m).toBeDefined();
  const out = new FrameDecoder(4096).push(encodeFrame(m, 4096));
  expect(out).toHaveLength(1);
  return out[0] as Msg;
}

function refusal(step: HandshakeStep): PlexusError {
  expect(step.ready).toBeUndefined();
  expect(step.refused).toBeDefined();
  return step.refused!;
}

/** A whole handshake; returns each side's steps and the client's messages. */
function run(clientKey: Buffer, serverKey: Buffer, serverNonce?: Buffer) {
  const client = new HandshakeClient(clientKey, 'site-A');
  const server = new HandshakeServer(serverKey, 'site-B', serverNonce);
  const hello = wire(client.start().send);
  const challenge = server.receive(hello);
  const answer = client.receive(wire(challenge.send));
  return { client, server, hello, challenge, answer };
}

describe('peer handshake', () => {
  it('with the same key ends ready at both sides, naming the other site and the version', () => {
    const { server, answer } = run(KEY, KEY);
    expect(answer.refused).toBeUndefined();
    const auth = wire(answer.send);
    expect(auth.t).toBe('auth');
    const done = server.receive(auth);
    expect(done.refused).toBeUndefined();
    expect(done.ready).toEqual({ site: 'site-A', version: Math.max(...VERSIONS) });
    const last = wire(done.send);
    expect(last).toEqual({ t: 'ready' });
  });

  it('the client side also ends ready, and the key never crosses the link', () => {
    const client = new HandshakeClient(KEY, 'site-A');
    const server = new HandshakeServer(KEY, 'site-B');
    const sent: Msg[] = [];
    const hello = wire(client.start().send);
    sent.push(hello);
    const challenge = wire(server.receive(hello).send);
    sent.push(challenge);
    const auth = wire(client.receive(challenge).send);
    sent.push(auth);
    const ready = wire(server.receive(auth).send);
    const end = client.receive(ready);
    expect(end.ready).toEqual({ site: 'site-B', version: 1 });
    expect(end.send).toBeUndefined();
    const bytes = Buffer.concat(sent.map((m) => encodeFrame(m)));
    expect(bytes.includes(KEY)).toBe(false);
    expect(hello).toMatchObject({ t: 'hello', proto: PROTOCOL, site: 'site-A' });
  });

  it('with a wrong key the client refuses the server proof before proving anything itself', () => {
    const { answer, challenge } = run(KEY, OTHER_KEY);
    expect(challenge.refused).toBeUndefined();
    const e = refusal(answer);
    expect(e.code).toBe('E_AUTH');
    expect(e.message).toContain('site-B');
    expect(e.message).toContain('does not hold');
    // Nothing to send: the client's proof would help an impostor server guess.
    expect(answer.send).toBeUndefined();
  });

  it('refuses a client that fakes its proof (reflected, random, missing or not bytes) with E_AUTH', () => {
    for (const fake of ['reflect', 'random', 'missing', 'string', 'short'] as const) {
      const server = new HandshakeServer(KEY, 'site-B');
      const impostor = new HandshakeClient(OTHER_KEY, 'mallory');
      const challenge = wire(server.receive(wire(impostor.start().send)).send);
      const proof = {
        reflect: challenge.proof,
        random: crypto.randomBytes(32),
        missing: undefined,
        string: Buffer.from(challenge.proof as Uint8Array).toString('hex'),
        short: Buffer.from(challenge.proof as Uint8Array).subarray(0, 16),
      }[fake];
      const step = server.receive({ t: 'auth', ...(proof === undefined ? {} : { proof }) });
      const e = refusal(step);
      expect(e.code, fake).toBe('E_AUTH');
      expect(e.message, fake).toContain('mallory');
      expect(step.send, fake).toMatchObject({ t: 'refused' });
    }
  });

  it("does not accept a server's proof from another session as the client's (the role is in the MAC)", () => {
    // Mallory, without the key, opens session 1 with nonce n1 and gets the server nonce s1;
    // in session 2 she offers s1 as her nonce, and this server happens to pick n1. Its
    // proof there is MAC(s1, n1), exactly the bytes session 1 wants, but for the other role.
    const n1 = crypto.randomBytes(32);
    const s1 = crypto.randomBytes(32);
    const server1 = new HandshakeServer(KEY, 'site-B', s1);
    server1.receive({ t: 'hello', proto: PROTOCOL, versions: [1], site: 'mallory', nonce: n1 });
    const server2 = new HandshakeServer(KEY, 'site-B', n1);
    const c2 = wire(server2.receive({ t: 'hello', proto: PROTOCOL, versions: [1], site: 'mallory', nonce: s1 }).send);
    expect(refusal(server1.receive({ t: 'auth', proof: c2.proof })).code).toBe('E_AUTH');
  });

  it('refuses a bad hello with E_PROTOCOL and a refusal to send', () => {
    const nonce = crypto.randomBytes(32);
    const good = { t: 'hello', proto: PROTOCOL, versions: [1], site: 'a', nonce };
    const bad: Array<[string, Msg, string]> = [
      ['other protocol', { ...good, proto: 'http' }, 'not a'],
      ['no protocol', { ...good, proto: undefined }, 'not a'],
      ['no common version', { ...good, versions: [2, 3] }, 'no common protocol version'],
      ['versions not numbers', { ...good, versions: ['1'] }, 'no common protocol version'],
      ['versions missing', { ...good, versions: undefined }, 'no common protocol version'],
      ['versions not an array', { ...good, versions: 1 }, 'no common protocol version'],
      ['short nonce', { ...good, nonce: nonce.subarray(0, 31) }, 'nonce'],
      ['long nonce', { ...good, nonce: Buffer.concat([nonce, nonce]) }, 'nonce'],
      ['nonce as text', { ...good, nonce: nonce.toString('hex') }, 'nonce'],
      ['no nonce', { ...good, nonce: undefined }, 'nonce'],
    ];
    for (const [name, hello, says] of bad) {
      const step = new HandshakeServer(KEY, 'site-B').receive(wire(hello));
      const e = refusal(step);
      expect(e.code, name).toBe('E_PROTOCOL');
      expect(e.message, name).toContain(says);
      expect(step.send, name).toEqual({ t: 'refused', reason: e.message });
    }
    // The same hello, well formed, is answered.
    expect(new HandshakeServer(KEY, 'site-B').receive(wire(good)).send).toMatchObject({ t: 'challenge', version: 1 });
  });

  it('picks the highest common version from a wider offer', () => {
    const step = new HandshakeServer(KEY, 'b').receive({ t: 'hello', proto: PROTOCOL, versions: [7, 1, 0, -1, 99], site: 'a', nonce: crypto.randomBytes(32) });
    expect(step.send).toMatchObject({ t: 'challenge', version: 1 });
  });

  it('refuses messages out of order at either side', () => {
    const hello = () => new HandshakeClient(KEY, 'a').start().send as Msg;
    // Server: auth before hello; a second hello; anything after the end.
    expect(refusal(new HandshakeServer(KEY, 'b').receive({ t: 'auth', proof: Buffer.alloc(32) })).code).toBe('E_PROTOCOL');
    const twice = new HandshakeServer(KEY, 'b');
    twice.receive(hello());
    expect(refusal(twice.receive(hello())).code).toBe('E_PROTOCOL');
    const { server, answer } = run(KEY, KEY);
    const auth = wire(answer.send);
    expect(server.receive(auth).ready).toBeDefined();
    expect(refusal(server.receive(auth)).code).toBe('E_PROTOCOL');
    expect(refusal(server.receive(hello())).code).toBe('E_PROTOCOL');
    // A refused server stays refused, even for a good hello.
    const refused = new HandshakeServer(KEY, 'b');
    refusal(refused.receive({ t: 'bogus' }));
    expect(refusal(refused.receive(hello())).code).toBe('E_PROTOCOL');

    // Client: ready before the challenge; a second challenge; messages before start().
    const early = new HandshakeClient(KEY, 'a');
    early.start();
    expect(refusal(early.receive({ t: 'ready' })).code).toBe('E_PROTOCOL');
    const c = run(KEY, KEY);
    expect(refusal(c.client.receive(wire(c.challenge.send))).code).toBe('E_PROTOCOL');
    const unstarted = new HandshakeClient(KEY, 'a');
    const s = new HandshakeServer(KEY, 'b').receive(wire(new HandshakeClient(KEY, 'x').start().send));
    expect(refusal(unstarted.receive(wire(s.send))).code).toBe('E_PROTOCOL');
  });

  it('refuses a message type that cannot be printed instead of throwing (either side)', () => {
    // MessagePack carries { toString: 0 } as data; String() of it throws.
    const t = { toString: 0, valueOf: 0 };
    const step = new HandshakeServer(KEY, 'b').receive({ t });
    expect(refusal(step).code).toBe('E_PROTOCOL');
    expect(step.send).toMatchObject({ t: 'refused' });
    const client = new HandshakeClient(KEY, 'a');
    client.start();
    expect(refusal(client.receive({ t })).code).toBe('E_PROTOCOL');
  });

  it("tells the client the server's reason when refused", () => {
    const client = new HandshakeClient(KEY, 'a');
    client.start();
    const e = refusal(client.receive({ t: 'refused', reason: 'the remote site has no peer key yet' }));
    expect(e.code).toBe('E_AUTH');
    expect(e.message).toContain('no peer key yet');
    const other = new HandshakeClient(KEY, 'a');
    other.start();
    expect(refusal(other.receive({ t: 'refused', reason: { evil: true } })).message).toContain('no reason given');
  });

  it('refuses a recording of an earlier successful handshake replayed against a fresh nonce', () => {
    const { server, hello, answer } = run(KEY, KEY);
    const auth = wire(answer.send);
    expect(server.receive(auth).ready).toBeDefined();
    // The eavesdropper replays the client's two messages to a new server session.
    const again = new HandshakeServer(KEY, 'site-B');
    const challenge = again.receive(hello);
    expect(challenge.refused).toBeUndefined();
    const e = refusal(again.receive(auth));
    expect(e.code).toBe('E_AUTH');
  });

  it('answers or refuses a hello offering a huge version list without throwing', () => {
    const versions = [...Array.from({ length: 250_000 }, (_, i) => i + 2), ...new Array<number>(250_000).fill(1)];
    const step = new HandshakeServer(KEY, 'b').receive({ t: 'hello', proto: PROTOCOL, versions, site: 'a', nonce: crypto.randomBytes(32) });
    expect(step.send).toMatchObject({ t: 'challenge', version: 1 });
    const none = new HandshakeServer(KEY, 'b').receive({ t: 'hello', proto: PROTOCOL, versions: versions.map((v) => v + 1), site: 'a', nonce: crypto.randomBytes(32) });
    expect(refusal(none).code).toBe('E_PROTOCOL');
    expect(refusal(none).message.length).toBeLessThan(10_000);
  });

  it('never throws on arbitrary messages, and is ready only for the genuine proof (seeded)', () => {
    let x = 0x2545f4914f6cdd1dn;
    const next = (): number => {
      x ^= (x << 13n) & 0xffffffffffffffffn;
      x ^= x >> 7n;
      x ^= (x << 17n) & 0xffffffffffffffffn;
      return Number(x & 0xffffffffn);
    };
    const below = (n: number): number => next() % n;
    const atom = (depth: number): unknown => {
      switch (below(depth > 2 ? 9 : 12)) {
        case 0:
          return undefined;
        case 1:
          return null;
        case 2:
          return [0, 1, -1, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY, -0, 1.5][below(8)];
        case 3:
          return ['', 'hello', 'auth', 'ready', 'refused', 'challenge', PROTOCOL, 'x'.repeat(below(1000))][below(8)];
        case 4:
          return crypto.randomBytes(below(3) === 0 ? 32 : below(80));
        case 5:
          return new Uint8Array(below(64));
        case 6:
          return below(2) === 0;
        case 7:
          return BigInt(next());
        case 8:
          return Symbol('s');
        case 9:
          return Array.from({ length: below(6) }, () => atom(depth + 1));
        default: {
          const o: Msg = {};
          // 'toString' as data is what MessagePack can carry ('__proto__' it renames).
          for (let i = below(5); i > 0; i--) o[['t', 'proto', 'versions', 'nonce', 'proof', 'site', 'version', 'valueOf', 'toString'][below(9)]!] = atom(depth + 1);
          return o;
        }
      }
    };
    // The link hands the state machine an empty object for anything not an object.
    const asMsg = (v: unknown): Msg => (typeof v === 'object' && v !== null ? (v as Msg) : {});
    const fields = ['t', 'proto', 'versions', 'site', 'nonce', 'proof', 'extra'];
    let readies = 0;
    for (let i = 0; i < 2000; i++) {
      const client = new HandshakeClient(KEY, 'site-A');
      const server = new HandshakeServer(KEY, 'site-B');
      const hello = client.start().send as Msg;
      const seq: Msg[] = [];
      // A genuine hello (mutated or not), or a random one.
      const first = below(4) === 0 ? asMsg(atom(0)) : { ...hello };
      const mutations = below(3);
      for (let k = 0; k < mutations; k++) first[fields[below(fields.length)]!] = atom(1);
      seq.push(first);
      let genuineProof: unknown;
      for (let step = 0; step < 3; step++) {
        const out: HandshakeStep = (() => {
          try {
            return server.receive(seq[seq.length - 1]!);
          } catch (e) {
            throw new Error(`iteration ${i}: receive threw on ${String(seq.map((m) => Object.keys(m)))}: ${(e as Error).message}`);
          }
        })();
        expect(typeof out).toBe('object');
        expect(out.send !== undefined || out.refused !== undefined || out.ready !== undefined).toBe(true);
        if (out.ready) {
          readies++;
          const last = seq[seq.length - 1]!;
          expect(Buffer.from(last.proof as Uint8Array).equals(Buffer.from(genuineProof as Uint8Array))).toBe(true);
        }
        if (out.refused || out.ready) break;
        // Answer the challenge as the client would, maybe mutated; or send junk.
        const c = client.receive(wire(out.send));
        const auth: Msg = c.send ? { ...c.send } : { t: 'auth' };
        genuineProof = c.send?.proof;
        const m = below(3);
        for (let k = 0; k < m; k++) auth[fields[below(fields.length)]!] = atom(1);
        if (auth.proof !== genuineProof) genuineProof = crypto.randomBytes(33); // matches nothing
        seq.push(below(5) === 0 ? asMsg(atom(0)) : auth);
      }
    }
    // The loop did reach the happy path now and then.
    expect(readies).toBeGreaterThan(10);
  });
});
