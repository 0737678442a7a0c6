/** The control socket's framing codec: round trips, split delivery, and arbitrary bytes. */
import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder, MAX_FRAME } from '../../src/agent/frame.js';
import { PlexusError } from '../../src/errors.js';

describe('control frames', () => {
  it('round-trip messages delivered whole, byte by byte or several per chunk', () => {
    const msgs = [
      { id: 1, method: 'volume.write', params: { name: 'a', offset: 4096, data: Buffer.alloc(70_000, 7) } },
      { id: 2, result: null },
      { id: 3, error: { code: 'E_NOENT', message: 'no' } },
    ];
    const bytes = Buffer.concat(msgs.map((m) => encodeFrame(m)));
    const whole = new FrameDecoder().push(bytes);
    expect(whole).toHaveLength(3);
    expect((whole[0] as { params: { data: Uint8Array } }).params.data.length).toBe(70_000);
    const d = new FrameDecoder();
    const one: unknown[] = [];
    for (const b of bytes) one.push(...d.push(Buffer.from([b])));
    expect(one).toEqual(whole);
    expect(d.pending).toBe(0);
  });

  it('refuses an oversize frame from its length alone, before buffering it', () => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(MAX_FRAME + 1);
    expect(() => new FrameDecoder().push(head)).toThrow(expect.objectContaining({ code: 'E_PROTOCOL' }));
    expect(() => encodeFrame({ data: Buffer.alloc(MAX_FRAME + 1) })).toThrow(expect.objectContaining({ code: 'E_INVALID' }));
  });

  it('turns arbitrary bytes into messages or E_PROTOCOL, never another error (seeded fuzz)', () => {
    let seed = 0x9e3779b9;
    const rand = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const valid = encodeFrame({ id: 9, method: 'jobs.list', params: {} });
    for (let i = 0; i < 3000; i++) {
      const d = new FrameDecoder();
      // Half pure noise, half a valid frame with a few bytes changed.
      const noise = rand(2) === 0;
      let input = noise ? Buffer.from(Array.from({ length: rand(64) }, () => rand(256))) : Buffer.from(valid);
      if (!noise) for (let k = 0; k < 1 + rand(3); k++) input[rand(input.length)] = rand(256);
      if (rand(4) === 0) input = Buffer.concat([Buffer.from([0, 0, 0, rand(40)]), input]);
      try {
        for (let at = 0; at < input.length; ) {
          const n = 1 + rand(16);
          d.push(input.subarray(at, at + n));
          at += n;
        }
      } catch (e) {
        expect(e).toBeInstanceOf(PlexusError);
        expect((e as PlexusError).code).toBe('E_PROTOCOL');
      }
    }
  });
});
