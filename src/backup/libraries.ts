/** Libraries as the catalog sees them: creating one registers it and its cartridges. */
import fs from 'node:fs';
import path from 'node:path';
import type { Catalog } from '../catalog/catalog.js';
import { fromSystem, guarded, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { checkDiskDir, DEFAULT_DISK_BLOCK, DEFAULT_DISK_DRIVES, DEFAULT_VOLUME_SIZE, DISK_MARKER, type DiskMarker, diskBarcode, diskCartridges, prefixesIn, readMarker } from '../tape/disk-library.js';
import { formatCartridge } from '../tape/disk-media.js';
import { TapeDrive } from '../tape/drive.js';
import { barcodePrefix, type CreateLibraryOptions, checkGeometry, Library, type LibraryConfig } from '../tape/library.js';
import { register } from '../tape/media.js';
import { syncDir, writeFileDurable } from '../util/durable.js';
import { checkVolumeName } from '../volumes/names.js';

// Registering a library's cartridges is the tape layer's (the inventory needs it too).
export { inspect, register } from '../tape/media.js';

/** Creates a library with blank cartridges and records it in the catalog. Every failure is a PlexusError. */
export function createLibrary(home: Home, catalog: Catalog, name: string, opts: CreateLibraryOptions): Library {
  return guarded(() => {
    const lib = Library.create(home, name, opts, (file, barcode, capacity, blockSize) => TapeDrive.format(file, barcode, capacity, blockSize));
    register(catalog, lib, false);
    return lib;
  });
}

/** Options of a disk library. */
export interface DiskLibraryOptions {
  /** Concurrent jobs (drives, default 4). */
  drives?: number;
  /** Capacity of each cartridge file (default 64 GiB; sparse, so a file takes what it holds). */
  volumeSize?: number;
  /** Tape block size of its cartridges (default 1 MiB). */
  blockSize?: number;
  /** Barcode prefix (default: the first letters of the name, made unique in the home). */
  prefix?: string;
}

/** The disk libraries of a home other than `name`: their directories and prefixes. */
function otherDiskLibraries(home: Home, name: string): Array<{ name: string; dir: string; prefix: string }> {
  return Library.list(home)
    .filter((l) => l.kind === 'disk' && l.name !== name)
    .map((l) => ({ name: l.name, dir: l.cartridgeDir, prefix: l.config.prefix! }));
}

/** `given` if no other disk library uses it (E_EXISTS), else the derived prefix made unique with a digit. */
function uniquePrefix(name: string, given: string | undefined, others: ReadonlyArray<{ name: string; prefix: string }>): string {
  const used = new Map(others.map((o) => [o.prefix, o.name]));
  if (given !== undefined) {
    const p = barcodePrefix(name, given);
    if (used.has(p)) throw new PlexusError('E_EXISTS', `barcode prefix ${p} is used by disk library ${used.get(p)}: choose another with --prefix`);
    return p;
  }
  const base = barcodePrefix(name);
  for (const p of [base, ...'123456789'.split('').map((d) => `${base}${d}`)]) if (!used.has(p)) return p;
  throw new PlexusError('E_EXISTS', `every barcode prefix derived from ${name} is taken: choose one with --prefix`);
}

function refuseExisting(home: Home, name: string): void {
  checkVolumeName(name);
  if (fs.existsSync(path.join(Library.root(home), name, 'library.json'))) throw new PlexusError('E_EXISTS', `library ${name} already exists`);
}

/**
 * Creates disk library `name` keeping its cartridges in `dir` (created if missing),
 * formats its first cartridge and records it in the catalog. Refuses a directory in
 * the home or overlapping another library's, and one that already holds a disk
 * library (`attachDiskLibrary` imports that). Every failure is a PlexusError.
 */
export function createDiskLibrary(home: Home, catalog: Catalog, name: string, dir: string, opts: DiskLibraryOptions = {}): Library {
  return guarded(() => {
    refuseExisting(home, name);
    const drives = opts.drives ?? DEFAULT_DISK_DRIVES;
    const cartridgeSize = opts.volumeSize ?? DEFAULT_VOLUME_SIZE;
    const blockSize = checkGeometry({ drives, cartridgeSize, blockSize: opts.blockSize ?? DEFAULT_DISK_BLOCK });
    const others = otherDiskLibraries(home, name);
    const real = checkDiskDir(home.dir, dir, others);
    const prefix = uniquePrefix(name, opts.prefix, others);
    const held = readMarker(real);
    if (held) throw new PlexusError('E_EXISTS', `${real} already holds disk library ${held.name}: attach it with \`plexus library import NAME --disk ${real}\``);
    if (diskCartridges(real, prefix, []).length > 0)
      throw new PlexusError('E_EXISTS', `${real} already holds cartridges of prefix ${prefix}: import them with \`plexus library import\`, or choose another --prefix`);
    let made: string | undefined;
    try {
      made = fs.mkdirSync(real, { recursive: true });
      if (made !== undefined) syncDir(path.dirname(made));
    } catch (e) {
      throw fromSystem(e, real);
    }
    const createdAt = new Date().toISOString();
    const marker: DiskMarker = { format: 1, kind: 'disk', name, prefix, cartridgeSize, blockSize, createdAt };
    const first = diskBarcode(prefix, 1);
    const config: LibraryConfig = { format: 1, kind: 'disk', dir: real, prefix, name, slots: 1, drives, cartridgeSize, blockSize, createdAt, cartridges: [] };
    try {
      writeFileDurable(path.join(real, DISK_MARKER), `${JSON.stringify(marker, null, 2)}\n`);
      // One cartridge from the start: it proves the directory takes a cartridge, and
      // a library has a slot to register. The rest come as jobs need them.
      const lib = Library.define(home, config, (l) => {
        formatCartridge(l, first);
        l.config.cartridges.push({ slot: 0, barcode: first });
      });
      register(catalog, lib, false);
      return lib;
    } catch (e) {
      // Nothing of a library that was not made is left behind (the directory stays if it was there).
      fs.rmSync(path.join(real, `${first}.tape`), { force: true });
      fs.rmSync(path.join(real, DISK_MARKER), { force: true });
      if (made !== undefined) fs.rmSync(made, { recursive: true, force: true });
      if (!fs.existsSync(path.join(Library.root(home), name, 'library.json'))) fs.rmSync(path.join(Library.root(home), name), { recursive: true, force: true });
      throw e;
    }
  });
}

/**
 * Attaches the disk library whose cartridges are in `dir` to this home as `name` (a
 * home rebuilt after it was lost, or a directory moved to another machine): its
 * geometry comes from the directory's marker, else from its first cartridge's label.
 * The catalog is not read from the cartridges here: `importDiskLibrary` does both.
 */
export function attachDiskLibrary(home: Home, catalog: Catalog, name: string, dir: string, opts: Pick<DiskLibraryOptions, 'drives' | 'prefix'> = {}): Library {
  return guarded(() => {
    refuseExisting(home, name);
    const others = otherDiskLibraries(home, name);
    const real = checkDiskDir(home.dir, dir, others);
    if (!fs.existsSync(real) || !fs.statSync(real).isDirectory()) throw new PlexusError('E_NOENT', `no directory ${real} to import a disk library from`);
    const marker = readMarker(real);
    const found = prefixesIn(real);
    const prefix = opts.prefix ?? marker?.prefix ?? found[0];
    if (prefix === undefined) throw new PlexusError('E_NOENT', `${real} holds no cartridge of a disk library (files named PREFIX000001.tape) and no ${DISK_MARKER}`);
    if (opts.prefix === undefined && !marker && found.length > 1) throw new PlexusError('E_INVALID', `${real} holds cartridges of several prefixes (${found.join(', ')}): choose one with --prefix`);
    const mine = others.find((o) => o.prefix === prefix);
    if (mine) throw new PlexusError('E_EXISTS', `barcode prefix ${prefix} is used by disk library ${mine.name} of this home`);
    const cartridges = diskCartridges(real, prefix, []);
    const clash = cartridges.find((c) => catalog.media().some((m) => m.barcode === c.barcode));
    if (clash) throw new PlexusError('E_EXISTS', `cartridge ${clash.barcode} of ${real} has the barcode of a cartridge this home already has`);
    let geometry = marker ? { cartridgeSize: marker.cartridgeSize, blockSize: marker.blockSize } : undefined;
    if (!geometry) {
      if (cartridges.length === 0) throw new PlexusError('E_NOENT', `${real} holds no cartridge of prefix ${prefix}`);
      const tape = TapeDrive.load(path.join(real, `${cartridges[0]!.barcode}.tape`), true);
      try {
        const l = tape.label();
        geometry = { cartridgeSize: l.capacity, blockSize: l.blockSize };
      } finally {
        tape.unload();
      }
    }
    const drives = opts.drives ?? DEFAULT_DISK_DRIVES;
    const blockSize = checkGeometry({ drives, ...geometry });
    const createdAt = marker?.createdAt ?? new Date().toISOString();
    // A directory without its marker gets one: cartridges are only ever created where it is.
    if (!marker) writeFileDurable(path.join(real, DISK_MARKER), `${JSON.stringify({ format: 1, kind: 'disk', name, prefix, ...geometry, createdAt } satisfies DiskMarker, null, 2)}\n`);
    const config: LibraryConfig = {
      format: 1,
      kind: 'disk',
      dir: real,
      prefix,
      name,
      slots: Math.max(1, cartridges.length),
      drives,
      cartridgeSize: geometry.cartridgeSize,
      blockSize,
      createdAt,
      cartridges,
    };
    const lib = Library.define(home, config, () => {});
    register(catalog, lib, false);
    return lib;
  });
}

/**
 * Removes a library: its directory and cartridges (a disk library's cartridge files and
 * marker too, and its directory if nothing else is left in it), and what the catalog
 * records of them. E_BUSY while a drive is in use, or (without `force`) while the
 * catalog holds backups on its cartridges. Every failure is a PlexusError.
 */
export function removeLibrary(home: Home, catalog: Catalog, name: string, force = false): { forgottenJobs: number[] } {
  return guarded(() => remove(home, catalog, name, force));
}

function remove(home: Home, catalog: Catalog, name: string, force: boolean): { forgottenJobs: number[] } {
  const lib = Library.open(home, name);
  const busy = lib.drives().filter((d) => d.busy);
  if (busy.length > 0) throw new PlexusError('E_BUSY', `library ${name} has drives in use (process ${busy.map((d) => d.pid ?? '?').join(', ')})`);
  const jobs = catalog.jobsOnLibrary(name);
  if (jobs.length > 0 && !force) {
    throw new PlexusError('E_BUSY', `library ${name} holds backups of ${jobs.length} job${jobs.length === 1 ? '' : 's'} (${jobs.join(', ')}); --force removes them too`);
  }
  catalog.forgetLibrary(name);
  try {
    if (lib.kind === 'disk') {
      const dir = lib.cartridgeDir;
      for (const c of lib.config.cartridges) fs.rmSync(lib.cartridgeFile(c.barcode), { force: true });
      fs.rmSync(path.join(dir, DISK_MARKER), { force: true });
      if (fs.existsSync(dir) && fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
    }
    fs.rmSync(lib.dir, { recursive: true, force: true });
  } catch (e) {
    throw fromSystem(e, lib.dir);
  }
  return { forgottenJobs: jobs };
}
