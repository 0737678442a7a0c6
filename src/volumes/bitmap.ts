/** Dirty bitmaps over the native core, persisted in a sidecar with write-intent logging. */
import { callNative, PlexusError } from '../errors.js';
import { type Extent, type NativeBitmap, native } from '../native/binding.js';

/** Default bytes per bit. */
export const DEFAULT_GRANULARITY = 64 * 1024;

/** One bit per granule of a volume; safe to mark from many writers. */
export class DirtyBitmap {
  private constructor(private readonly handle: NativeBitmap) {}

  /**
   * Creates an empty bitmap file for a volume of `size` bytes. With `durable`, a newly
   * dirtied region is on disk before `mark` returns (write-intent).
   */
  static create(file: string, size: number, opts: { granularity?: number; durable?: boolean } = {}): DirtyBitmap {
    const g = opts.granularity ?? DEFAULT_GRANULARITY;
    if (!Number.isInteger(g) || g <= 0 || (g & (g - 1)) !== 0) {
      throw new PlexusError('E_INVALID', `granularity ${g} must be a power of two`);
    }
    return new DirtyBitmap(callNative(() => native.NativeBitmap.create(file, size, g, opts.durable ?? false)));
  }

  /** Opens a bitmap file, recovering from a torn write-intent log. */
  static open(file: string, opts: { durable?: boolean } = {}): DirtyBitmap {
    return new DirtyBitmap(callNative(() => native.NativeBitmap.open(file, opts.durable ?? false)));
  }

  get granularity(): number {
    return this.handle.granularity;
  }
  get size(): number {
    return this.handle.size;
  }
  get bits(): number {
    return this.handle.bits;
  }

  /** Marks the granules a byte range touches; returns how many were newly dirtied. */
  mark(offset: number, length: number): number {
    return callNative(() => this.handle.markRange(offset, length));
  }
  /** Whether any granule of the range is dirty. */
  isDirty(offset: number, length: number): boolean {
    return callNative(() => this.handle.isDirty(offset, length));
  }
  /** Number of dirty granules. */
  count(): number {
    return this.handle.count();
  }
  /** Bytes covered by dirty granules. */
  dirtyBytes(): number {
    return this.handle.dirtyBytes();
  }
  /** Dirty regions, coalesced, ascending. */
  runs(): Extent[] {
    return this.handle.runs();
  }
  /** ORs in another bitmap of the same geometry (E_SIZE otherwise). */
  merge(other: DirtyBitmap): void {
    callNative(() => this.handle.mergeFrom(other.handle));
  }
  /** Clears every bit, durably. */
  clear(): void {
    callNative(() => this.handle.clear());
  }
  /** Clears the granules a range touches, durably. */
  clearRange(offset: number, length: number): void {
    callNative(() => this.handle.clearRange(offset, length));
  }
  /** Writes a snapshot and empties the log. */
  flush(): void {
    callNative(() => this.handle.flush());
  }
}
