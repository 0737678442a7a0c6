/**
 * Disk libraries (docs/disk-library.md): a directory, typically on another file system,
 * holding cartridge files in the tape format, named by barcode. Its barcodes are a
 * prefix and a 6-digit counter, and the cartridges are created as jobs need them, so
 * the directory is all there is to it: a lost home re-attaches it with
 * `plexus library import`, and `catalog rebuild` reads its jobs back from the
 * cartridges. A marker file in the directory names the library; cartridges are only
 * created where it is, so an unmounted file system is never written in its place.
 *
 * This module knows names and directories only; src/tape/disk-media.ts creates
 * cartridges, src/backup/libraries.ts creates and imports libraries.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fromSystem, PlexusError } from '../errors.js';

/** The marker a disk library's directory holds: what the library is, for an import. */
export const DISK_MARKER = 'plexus-library.json';

/** What the marker records. */
export interface DiskMarker {
  format: 1;
  kind: 'disk';
  name: string;
  prefix: string;
  cartridgeSize: number;
  blockSize: number;
  createdAt: string;
}

/** The default size of a disk library's cartridge files: 64 GiB (sparse: a file takes what it holds). */
export const DEFAULT_VOLUME_SIZE = 64 * 2 ** 30;
/** The default block size of a disk library's cartridges: 1 MiB. A disk takes large
 * writes; against 256 KiB (a tape library's default) it cut a 1 GiB backup's time by
 * about a tenth on the development machine (fewer records, checksum calls and writes). */
export const DEFAULT_DISK_BLOCK = 1 << 20;
/** The default number of drives (concurrent jobs) of a disk library. */
export const DEFAULT_DISK_DRIVES = 4;

const COUNTER_DIGITS = 6;
const MAX_COUNTER = 10 ** COUNTER_DIGITS - 1;
const FILE = /^([A-Z0-9]{1,4}?)(\d{6})\.tape$/;

/** Barcode of a disk library's `n`th cartridge (from 1): the prefix and 6 digits. */
export function diskBarcode(prefix: string, n: number): string {
  if (!Number.isInteger(n) || n < 1 || n > MAX_COUNTER) throw new PlexusError('E_NOSPC', `cartridge counter ${n} of prefix ${prefix} is past ${MAX_COUNTER}`);
  return `${prefix}${String(n).padStart(COUNTER_DIGITS, '0')}`;
}

/** The counter of a disk barcode of `prefix`, or undefined if it is not one. */
export function diskCounter(prefix: string, barcode: string): number | undefined {
  if (!barcode.startsWith(prefix)) return undefined;
  const digits = barcode.slice(prefix.length);
  return /^\d{6}$/.test(digits) && Number(digits) > 0 ? Number(digits) : undefined;
}

/** The prefixes of the cartridge files in `dir` (a directory to import). */
export function prefixesIn(dir: string): string[] {
  return [...new Set(entries(dir).flatMap((n) => FILE.exec(n)?.[1] ?? []))].sort();
}

/** The names in `dir`; none when it cannot be read (gone, unmounted, not permitted):
 * opening the library must not fail for it, its cartridges then read as missing. */
function entries(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * A disk library's cartridges: those `recorded` in its library.json and those `dir`
 * holds with its prefix, by slot (counter less one). A directory that is missing lists
 * nothing: the recorded cartridges are then missing, not forgotten.
 */
export function diskCartridges(dir: string, prefix: string, recorded: ReadonlyArray<{ slot: number; barcode: string }>): Array<{ slot: number; barcode: string }> {
  const all = new Map(recorded.map((c) => [c.barcode, c.slot]));
  for (const n of entries(dir)) {
    if (!n.endsWith('.tape')) continue;
    const barcode = n.slice(0, -'.tape'.length);
    const counter = diskCounter(prefix, barcode);
    if (counter !== undefined) all.set(barcode, counter - 1);
  }
  return [...all].map(([barcode, slot]) => ({ slot, barcode })).sort((a, b) => a.slot - b.slot);
}

/** Whether `inner` is `outer` or lies inside it (both absolute, resolved). */
export function within(inner: string, outer: string): boolean {
  const rel = path.relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** `dir` resolved through its symbolic links as far as it exists (the rest appended). */
export function realDir(dir: string): string {
  const abs = path.resolve(dir);
  let head = abs;
  const tail: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync(head), ...tail.reverse());
    } catch {
      const up = path.dirname(head);
      if (up === head) return abs;
      tail.push(path.basename(head));
      head = up;
    }
  }
}

/**
 * Refuses a directory a disk library must not use (E_INVALID): the home or anything in
 * it (the point of a disk library is to outlive the home; its volumes and libraries are
 * the home's own), or the directory of another library, inside or around it.
 */
export function checkDiskDir(homeDir: string, dir: string, others: ReadonlyArray<{ name: string; dir: string }>): string {
  const real = realDir(dir);
  const home = realDir(homeDir);
  if (within(real, home))
    throw new PlexusError(
      'E_INVALID',
      `disk library directory ${real} lies inside the home ${home}: choose a directory outside it (typically on another file system), so the backups outlive the home`,
    );
  for (const o of others) {
    const theirs = realDir(o.dir);
    if (within(real, theirs) || within(theirs, real)) throw new PlexusError('E_INVALID', `disk library directory ${real} overlaps the directory of library ${o.name} (${theirs})`);
  }
  return real;
}

/** Reads a directory's marker; undefined when there is none, E_CORRUPT when it is not one. */
export function readMarker(dir: string): DiskMarker | undefined {
  const file = path.join(dir, DISK_MARKER);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fromSystem(e, file);
  }
  try {
    const m = JSON.parse(text) as DiskMarker;
    if (m.format !== 1 || m.kind !== 'disk' || typeof m.prefix !== 'string' || !Number.isSafeInteger(m.cartridgeSize) || !Number.isSafeInteger(m.blockSize))
      throw new Error('not a disk library marker');
    return m;
  } catch (e) {
    throw new PlexusError('E_CORRUPT', `${file} is unreadable: ${(e as Error).message}`, { cause: e });
  }
}

/** E_NOENT unless `dir` holds the marker of disk library `name`: its file system is mounted and it is the library's. */
export function checkMounted(dir: string, name: string): void {
  const m = readMarker(dir);
  if (m === undefined) {
    throw new PlexusError('E_NOENT', `the directory ${dir} of disk library ${name} does not hold its marker ${DISK_MARKER} (is its file system mounted?): no cartridge is created there`);
  }
}

/** Bytes of the file system holding `dir`: its size and what is free (statfs), or undefined when it cannot be read. */
export function fileSystemSpace(dir: string): { total: number; free: number } | undefined {
  try {
    const s = fs.statfsSync(dir);
    return { total: s.blocks * s.bsize, free: s.bavail * s.bsize };
  } catch {
    return undefined;
  }
}

/** Bytes the files of `barcodes` take on disk in `dir` (allocated blocks: the cartridge files are sparse). */
export function allocatedBytes(dir: string, barcodes: readonly string[]): number {
  let n = 0;
  for (const b of barcodes) {
    try {
      n += fs.statSync(path.join(dir, `${b}.tape`)).blocks * 512;
    } catch {
      // A missing cartridge takes nothing.
    }
  }
  return n;
}
