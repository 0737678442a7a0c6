/**
 * One copy of a backup job on its cartridges, read as the source of a copy device: a
 * second copy is written from it exactly as a backup is from a volume (`backup copy`).
 * The native core verifies every block and every segment's digest as it reads, and
 * keeps the source's holes holes (crates/tape/src/source.rs).
 */
import { callNative } from '../errors.js';
import { native } from '../native/binding.js';

type NativeTapeSource = InstanceType<typeof native.NativeTapeSource>;

/** A segment of the copy: `length` bytes from `sourceOffset` in tape file `file` of the cartridge at `path`. */
export interface SourceSegment {
  path: string;
  file: number;
  firstBlock: number;
  sourceOffset: number;
  length: number;
  /** The catalog's digest of the segment, 32 hex digits. */
  digest: string;
}

/** A job's copy as a read-only source of `size` bytes; close it when done (unloads its cartridges). */
export class TapeSource {
  private constructor(
    readonly handle: NativeTapeSource,
    readonly size: number,
  ) {}

  /** The source over `segments`, which must cover `[0, size)` end to end (E_INVALID otherwise). */
  static open(label: string, size: number, segments: readonly SourceSegment[]): TapeSource {
    return new TapeSource(
      callNative(() => native.NativeTapeSource.open(label, size, [...segments])),
      size,
    );
  }

  /** Unloads its cartridges. */
  close(): void {
    callNative(() => this.handle.close());
  }
}
