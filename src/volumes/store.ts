/** The volumes of a storage home: create, find, list and remove them by name. */
import fs from 'node:fs';
import { callNative, fromSystem, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { native } from '../native/binding.js';
import { writeFileDurable } from '../util/durable.js';
import { guardMethods } from '../util/guard.js';
import { checkVolumeName, volumeFile } from './names.js';
import { Volume, type VolumeInfo } from './volume.js';

/** Options for creating a volume. */
export interface CreateVolumeOptions {
  /** Size in bytes; a multiple of the block size. */
  size: number;
  /** Block size in bytes, a power of two from 512 B to 1 MiB (default 4 KiB). */
  blockSize?: number;
}

/** A staged copy: a volume written once from a frozen image (`pair stage`), recorded
 * with the state of its data file at that moment, so a backup can tell whether anything
 * wrote it since (see src/backup/consistency.ts). */
export interface StagedImage {
  /** The split plex it was copied from. */
  from: string;
  /** The time its data is as of: the split time. */
  dataTime: string;
  /** The data file's size, mtime and ctime (ns) once the copy was flushed. */
  file: FileStamp;
}

/** What a write to a file changes: its size, mtime and ctime (ns, as decimal strings). */
export interface FileStamp {
  size: number;
  mtimeNs: string;
  ctimeNs: string;
}

/** The size, mtime and ctime of `file` now. Reading the ctime makes the kernel give the
 * next write a fine-grained timestamp (multigrain timestamps), so a write right after
 * still changes it. */
export function fileStamp(file: string): FileStamp {
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(file, { bigint: true });
  } catch (e) {
    throw fromSystem(e, file);
  }
  return { size: Number(st.size), mtimeNs: st.mtimeNs.toString(), ctimeNs: st.ctimeNs.toString() };
}

/** Whether two stamps describe the same, unwritten, file. */
export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

/** Default block size of new volumes. */
export const DEFAULT_BLOCK_SIZE = 4096;

/** The named volumes of one home. */
export class VolumeStore {
  constructor(readonly home: Home) {}

  /** Path of the data file of `name`. */
  file(name: string): string {
    return volumeFile(this.home.volumesDir, name);
  }

  /** Path of the dirty-bitmap sidecar kept for `name` (its log is beside it, `.log`). */
  bitmapFile(name: string): string {
    return this.file(name).replace(/\.img$/, '.bitmap');
  }

  /** Path of the staged-image record of `name` (see {@link StagedImage}). */
  stagedFile(name: string): string {
    return this.file(name).replace(/\.img$/, '.staged.json');
  }

  /** Records that `name` now holds a copy of the frozen image of `from` as of `dataTime`
   * (its data file as it is now); replaced atomically. */
  markStaged(name: string, from: string, dataTime: string): void {
    const rec: StagedImage = { from, dataTime, file: fileStamp(this.file(name)) };
    writeFileDurable(this.stagedFile(name), `${JSON.stringify(rec)}\n`);
  }

  /** The staged-image record of `name`, if it has one (a malformed one counts as none). */
  staged(name: string): StagedImage | undefined {
    try {
      const r = JSON.parse(fs.readFileSync(this.stagedFile(name), 'utf8')) as StagedImage;
      return typeof r.from === 'string' && typeof r.dataTime === 'string' && typeof r.file?.mtimeNs === 'string' ? r : undefined;
    } catch {
      return undefined;
    }
  }

  /** Whether a volume of that name exists. */
  exists(name: string): boolean {
    return fs.existsSync(`${this.file(name)}.meta`);
  }

  /** Creates a sparse volume; E_EXISTS if the name is taken. */
  create(name: string, opts: CreateVolumeOptions): Volume {
    checkVolumeName(name);
    if (this.exists(name)) throw new PlexusError('E_EXISTS', `volume ${name} already exists`);
    const handle = callNative(() => native.NativeVolume.create(this.file(name), opts.size, opts.blockSize ?? DEFAULT_BLOCK_SIZE));
    return new Volume(name, handle);
  }

  /** Opens a volume by name; E_NOENT naming the home if there is none. */
  open(name: string, opts: { readOnly?: boolean } = {}): Volume {
    checkVolumeName(name);
    if (!this.exists(name)) throw new PlexusError('E_NOENT', `no volume named ${name} in ${this.home.dir}`);
    return new Volume(
      name,
      callNative(() => native.NativeVolume.open(this.file(name), opts.readOnly ?? false)),
    );
  }

  /** Names of all volumes, sorted. */
  names(): string[] {
    if (!fs.existsSync(this.home.volumesDir)) return [];
    return fs
      .readdirSync(this.home.volumesDir)
      .filter((f) => f.endsWith('.img.meta'))
      .map((f) => f.slice(0, -'.img.meta'.length))
      .sort();
  }

  /** Identity and geometry of every volume. */
  list(): VolumeInfo[] {
    return this.names().map((n) => this.open(n, { readOnly: true }).info());
  }

  /** Deletes a volume. */
  remove(name: string): void {
    checkVolumeName(name);
    if (!this.exists(name)) throw new PlexusError('E_NOENT', `no volume named ${name} in ${this.home.dir}`);
    callNative(() => native.NativeVolume.remove(this.file(name)));
    // A bitmap describes this volume only; leaving it would haunt a later volume of the same name.
    for (const f of [this.bitmapFile(name), `${this.bitmapFile(name)}.log`, this.stagedFile(name)]) fs.rmSync(f, { force: true });
  }

  /** Finds a volume by its unique identifier rather than its name. */
  findById(id: string): Volume | undefined {
    for (const n of this.names()) {
      const v = this.open(n, { readOnly: true });
      if (v.info().id === id.toLowerCase()) return v;
    }
    return undefined;
  }
}

// The library's entry points: nothing but a PlexusError escapes them (docs/errors.md).
// `exists` and `staged` need no guard: they throw nothing else, and `open` calls them per volume.
guardMethods(VolumeStore, ['markStaged', 'create', 'open', 'names', 'list', 'remove', 'findById']);
