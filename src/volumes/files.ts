/** Moving bytes between plain files and volumes (or any volume-like reader/writer). */
import fs from 'node:fs';
import { asPlexusError, fromSystem, guarded, PlexusError } from '../errors.js';

/** Bytes moved per read or write. */
const PIECE = 4 << 20;

/** What these functions need of a volume: a `Volume`, a mirrored `VolumeIo`. */
export interface ByteTarget {
  readonly name: string;
  readonly size: number;
  read(offset: number, length: number): Buffer;
  write(offset: number, data: Buffer): void;
}

/**
 * Resolves an optional offset and length against a volume: the offset defaults to 0 and
 * the length to "to the end"; E_RANGE if the range runs past the end.
 */
export function resolveRange(v: Pick<ByteTarget, 'name' | 'size'>, offset?: number, length?: number): { offset: number; length: number } {
  const size = v.size;
  const at = offset ?? 0;
  if (at > size) throw new PlexusError('E_RANGE', `volume ${v.name}: offset ${at} is past the end (size ${size})`);
  const len = length ?? size - at;
  if (at + len > size) {
    throw new PlexusError('E_RANGE', `volume ${v.name}: range offset ${at} length ${len} is past the end (size ${size})`);
  }
  return { offset: at, length: len };
}

/**
 * Copies the contents of `file` into the volume at `offset`, in pieces; E_NOENT if the file
 * cannot be read, E_RANGE before writing anything if it does not fit. Returns the bytes written.
 */
export function writeFileToVolume(v: ByteTarget, offset: number, file: string): number {
  return onFile(file, () => writeFile(v, offset, file));
}

function writeFile(v: ByteTarget, offset: number, file: string): number {
  const size = inputFileSize(file);
  if (offset + size > v.size) {
    throw new PlexusError('E_RANGE', `volume ${v.name}: ${file} (${size} bytes) at offset ${offset} is past the end (size ${v.size})`);
  }
  let written = 0;
  for (const [at, data] of readFilePieces(file)) {
    v.write(offset + at, data);
    written = at + data.length;
  }
  return written;
}

/** The size of an input file; E_NOENT naming it when it cannot be read. */
export function inputFileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch (e) {
    throw new PlexusError('E_NOENT', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * The contents of `file` in pieces of at most 4 MiB, as `[position, bytes]`. The buffer
 * is reused: use each piece before asking for the next. The file is closed when the
 * loop ends, however it ends.
 */
export function* readFilePieces(file: string): Generator<[number, Buffer]> {
  const fd = onFile(file, () => fs.openSync(file, 'r'));
  try {
    const buf = Buffer.alloc(PIECE);
    for (let at = 0; ; ) {
      const n = onFile(file, () => fs.readSync(fd, buf, 0, PIECE, at));
      if (n === 0) return;
      yield [at, buf.subarray(0, n)];
      at += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes `length` bytes of the volume from `offset` into `file` (created or truncated). */
export function readVolumeToFile(v: ByteTarget, offset: number, length: number, file: string): void {
  onFile(file, () => readToFile(v, offset, length, file));
}

function readToFile(v: ByteTarget, offset: number, length: number, file: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (let at = 0; at < length; at += PIECE) fs.writeSync(fd, v.read(offset + at, Math.min(PIECE, length - at)));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads `length` bytes of the volume from `offset` in pieces, handing each to `sink`
 * (which may wait, e.g. for a stream to drain) before reading the next.
 */
export function readVolumeInPieces(v: ByteTarget, offset: number, length: number, sink: (piece: Buffer) => void | Promise<void>): Promise<void> {
  return guarded(async () => {
    for (let at = 0; at < length; at += PIECE) await sink(v.read(offset + at, Math.min(PIECE, length - at)));
  });
}

/** Runs `fn`, turning what escapes into a PlexusError: a system error naming `file`, a
 * bug E_INTERNAL (see asPlexusError). */
function onFile<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw asPlexusError(fromSystem(e, file));
  }
}
