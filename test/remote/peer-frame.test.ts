/** The link's framing as a pure codec: round trips, split arrival, hostile bytes. */
import { describe, expect, it } from 'vitest';
import { PlexusError } from '../../src/errors.js';
import { encodePeerFrame, PeerFrameDecoder } from '../../src/remote/peer-frame.js';

const MAX = 17 << 20;

function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('peer frames', () => {
  it('round-trip envelopes and payloads, whatever the chunking', () => {
    const payload = Buffer.alloc(3 << 20, 0x5a);
    const wire = Buffer.concat([...encodePeerFrame({ id: 1, method: 'repl.batch', params: { group: 'g' } }, payload, MAX), ...encodePeerFrame({ id: 2, result: { applied: 9 } }, undefined, MAX)]);
    const rnd = xorshift(7);
    for (let round = 0; round < 20; round++) {
      const d = new PeerFrameDecoder(MAX);
      const got = [];
      for (let at = 0; at < wire.length; ) {
        const n = 1 + Math.floor(rnd() * 200_000);
        got.push(...d.push(wire.subarray(at, at + n)));
        at += n;
      }
      expect(got).toHaveLength(2);
      expect(got[0]!.envelope).toEqual({ id: 1, method: 'repl.batch', params: { group: 'g' } });
      expect(got[0]!.payload!.equals(payload)).toBe(true);
      expect(got[1]!.envelope).toEqual({ id: 2, result: { applied: 9 } });
      expect(got[1]!.payload).toBeUndefined();
      expect(d.pending).toBe(0);
    }
  });

  it('refuses an oversized frame before allocating it', () => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(MAX + 1, 0);
    expect(() => new PeerFrameDecoder(MAX).push(head)).toThrow(/larger than/);
    expect(() => encodePeerFrame({ id: 1 }, Buffer.alloc(MAX), MAX)).toThrow(PlexusError);
  });

  it('never fails on random bytes except with E_PROTOCOL (seeded, bounded)', () => {
    const rnd = xorshift(42);
    const valid = Buffer.concat(encodePeerFrame({ id: 3, method: 'repl.status', params: { group: 'g' } }, Buffer.alloc(64, 1), MAX));
    for (let i = 0; i < 3000; i++) {
      const bytes = i % 2 ? Buffer.from(valid) : Buffer.alloc(1 + Math.floor(rnd() * 64));
      for (let k = 0; k < 1 + Math.floor(rnd() * 6); k++) bytes[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256);
      if (i % 2 === 0) for (let k = 0; k < bytes.length; k++) bytes[k] = Math.floor(rnd() * 256);
      try {
        new PeerFrameDecoder(1 << 16).push(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(PlexusError);
        expect((e as PlexusError).code).toBe('E_PROTOCOL');
      }
    }
  });
});
