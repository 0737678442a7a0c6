/** The volumes of a storage home: create, find, list and remove them by name. */
import fs from 'node:fs';
import { callNative, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { native } from '../native/binding.js';
import { checkVolumeName, volumeFile } from './names.js';
import { Volume, type VolumeInfo } from './volume.js';

/** Options for creating a volume. */
export interface CreateVolumeOptions {
  /** Size in bytes; a multiple of the block size. */
  size: number;
  /** Block size in bytes, a power of two from 512 B to 1 MiB (default 4 KiB). */
  blockSize?: number;
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
    return new Volume(name, callNative(() => native.NativeVolume.open(this.file(name), opts.readOnly ?? false)));
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
    for (const f of [this.bitmapFile(name), `${this.bitmapFile(name)}.log`]) fs.rmSync(f, { force: true });
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
