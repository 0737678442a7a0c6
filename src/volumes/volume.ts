/** An open volume: typed reads, writes, fills and checksums over the native core. */
import fs from 'node:fs';
import { awaitNative, callNative, PlexusError } from '../errors.js';
import { type NativeVolume, native } from '../native/binding.js';

/** Identity and geometry of a volume, as listings show it. */
export interface VolumeInfo {
  name: string;
  id: string;
  size: number;
  blockSize: number;
  created: string;
  path: string;
  /** Bytes the data file occupies on disk: less than `size` for a thin (sparse) volume. */
  allocatedBytes: number;
}

/** Bytes a file occupies on disk (its allocated blocks); 0 if it cannot be stat'ed. */
function allocatedBytes(file: string): number {
  try {
    return fs.statSync(file).blocks * 512;
  } catch {
    return 0;
  }
}

/** A volume file opened through the native core. */
export class Volume {
  /** @internal */
  constructor(
    readonly name: string,
    readonly handle: NativeVolume,
  ) {}

  /** Identity and geometry. */
  info(): VolumeInfo {
    const i = callNative(() => this.handle.info());
    return {
      name: this.name,
      id: i.id,
      size: i.size,
      blockSize: i.blockSize,
      created: new Date(i.createdMs).toISOString(),
      path: i.path,
      allocatedBytes: allocatedBytes(i.path),
    };
  }

  /** Size in bytes. */
  get size(): number {
    return callNative(() => this.handle.info()).size;
  }

  /** Reads `length` bytes at `offset` (E_RANGE past the end). */
  read(offset: number, length: number): Buffer {
    return callNative(() => this.handle.read(offset, length));
  }

  /** Writes `data` at `offset` (E_RANGE past the end, E_READONLY on a read-only handle). */
  write(offset: number, data: Uint8Array): void {
    callNative(() => this.handle.write(offset, Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
  }

  /** Fills a range with one byte value, or with deterministic pseudo-random bytes from `seed`. */
  async fill(offset: number, length: number, fill: { pattern: number } | { seed: number }): Promise<void> {
    if ('pattern' in fill && !(Number.isInteger(fill.pattern) && fill.pattern >= 0 && fill.pattern <= 255)) {
      throw new PlexusError('E_INVALID', `pattern byte must be 0-255, got ${fill.pattern}`);
    }
    const opts = 'pattern' in fill ? { pattern: fill.pattern } : { seed: fill.seed };
    await awaitNative(callNative(() => this.handle.fill(offset, length, opts)));
  }

  /** Makes every acknowledged write durable. */
  flush(): void {
    callNative(() => this.handle.flush());
  }

  /** SHA-256 of a range (default: the whole volume), hex. */
  async checksum(offset = 0, length?: number): Promise<string> {
    return awaitNative(callNative(() => this.handle.checksum(offset, length)));
  }
}

/** Opens a volume file directly by path (no home needed). */
export function openVolumeFile(file: string, name: string, readOnly = false): Volume {
  return new Volume(
    name,
    callNative(() => native.NativeVolume.open(file, readOnly)),
  );
}
