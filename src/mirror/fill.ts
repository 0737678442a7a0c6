/** Pattern and seeded-random fills through a VolumeIo (so paired volumes stay mirrored). */
import { callNative, PlexusError } from '../errors.js';
import { native } from '../native/binding.js';
import type { VolumeIo } from './io.js';

const PIECE = 4 << 20;

/** Writes `length` bytes at `offset`: one byte value, or the seeded random bytes that
 * `Volume.fill` would write there. */
export function fillIo(io: VolumeIo, offset: number, length: number, what: { pattern: number } | { seed: number }): void {
  if (offset + length > io.size) {
    throw new PlexusError('E_RANGE', `volume ${io.name}: range offset ${offset} length ${length} is past the end (size ${io.size})`);
  }
  const pattern = 'pattern' in what ? Buffer.alloc(Math.min(PIECE, length), what.pattern) : undefined;
  for (let at = 0; at < length; at += PIECE) {
    const n = Math.min(PIECE, length - at);
    const data = pattern ? pattern.subarray(0, n) : callNative(() => native.randomBytes((what as { seed: number }).seed, offset + at, n));
    io.write(offset + at, data);
  }
}
