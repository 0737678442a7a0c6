/** Pattern and seeded-random fills through a VolumeIo (so paired volumes stay mirrored). */
import { callNative } from '../errors.js';
import { native } from '../native/binding.js';
import { resolveRange } from '../volumes/files.js';
import type { VolumeIo } from './io.js';

const PIECE = 4 << 20;

/** Writes `length` bytes at `offset`: one byte value, or the seeded random bytes that
 * `Volume.fill` would write there. */
export function fillIo(io: VolumeIo, offset: number, length: number, what: { pattern: number } | { seed: number }): void {
  resolveRange(io, offset, length);
  for (const [at, data] of fillPieces(offset, length, what)) io.write(at, data);
}

/** The pieces `fillIo` writes, as `[offset, bytes]`, 4 MiB at most each; a pattern's
 * buffer is reused: use each piece before asking for the next. */
export function* fillPieces(offset: number, length: number, what: { pattern: number } | { seed: number }): Generator<[number, Buffer]> {
  const pattern = 'pattern' in what ? Buffer.alloc(Math.min(PIECE, length), what.pattern) : undefined;
  for (let at = 0; at < length; at += PIECE) {
    const n = Math.min(PIECE, length - at);
    yield [offset + at, pattern ? pattern.subarray(0, n) : callNative(() => native.randomBytes((what as { seed: number }).seed, offset + at, n))];
  }
}
