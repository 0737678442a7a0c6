/**
 * A disk library's cartridges are made as jobs need them: when a stream needs a
 * cartridge with room and none is free, a new one is formatted in the library's
 * directory (the next counter of its prefix), so the library never runs out while its
 * file system has room; when that is full the job fails E_NOSPC, naming the directory.
 */
import fs from 'node:fs';
import type { Catalog } from '../catalog/catalog.js';
import { asPlexusError, fromSystem, PlexusError } from '../errors.js';
import { syncDir } from '../util/durable.js';
import { formatBytes } from '../util/size.js';
import { checkMounted, diskBarcode, fileSystemSpace } from './disk-library.js';
import { TapeDrive } from './drive.js';
import type { Library, OwnerLock } from './library.js';
import { inspect } from './media.js';

/**
 * Formats a new scratch cartridge in disk library `lib`, records it (library.json, the
 * catalog's media) and returns it claimed by this process. Refuses (E_NOENT) a
 * directory whose marker is gone: an unmounted file system is not written instead.
 */
export function newDiskCartridge(catalog: Catalog, lib: Library): { barcode: string; lock: OwnerLock } {
  if (lib.kind !== 'disk') throw new PlexusError('E_INTERNAL', `library ${lib.name} is not a disk library`);
  checkMounted(lib.cartridgeDir, lib.name);
  const prefix = lib.config.prefix!;
  // Barcodes are unique in the home (the catalog's media rows), not only in the library.
  const taken = new Set(catalog.media().map((m) => m.barcode));
  let n = Math.max(0, ...lib.config.cartridges.map((c) => c.slot + 1)) + 1;
  for (; ; n++) {
    const barcode = diskBarcode(prefix, n);
    if (taken.has(barcode) || lib.present(barcode)) continue;
    // Claimed before it exists: another process making the same one skips to the next.
    const lock = lib.tryClaimCartridge(barcode);
    if (!lock) continue;
    try {
      formatCartridge(lib, barcode);
    } catch (e) {
      lock.release();
      throw e;
    }
    try {
      lib.addCartridge(barcode, n - 1);
      catalog.putMedia(inspect(lib, barcode, n - 1));
    } catch (e) {
      lock.release();
      throw e;
    }
    return { barcode, lock };
  }
}

/**
 * Formats cartridge `barcode` of disk library `lib` under a temporary name and renames
 * it into place: a crash mid-format leaves a `.partial` file that no listing takes for
 * a cartridge (the next format of that barcode removes it), never a torn cartridge
 * every scan would trip on. E_NOSPC names the directory.
 */
export function formatCartridge(lib: Library, barcode: string): void {
  const file = lib.cartridgeFile(barcode);
  const partial = `${file}.partial`;
  try {
    fs.rmSync(partial, { force: true });
    TapeDrive.format(partial, barcode, lib.config.cartridgeSize, lib.config.blockSize);
    fs.renameSync(partial, file);
    syncDir(lib.cartridgeDir);
  } catch (e) {
    fs.rmSync(partial, { force: true });
    const err = asPlexusError(fromSystem(e, file));
    throw err.code === 'E_NOSPC' ? diskFull(lib, err, `cannot create cartridge ${barcode}`) : err;
  }
}

/**
 * Makes sure disk library `lib` has at least `count` cartridges with room that no job
 * holds (scratch ones are formatted as needed): the redundant-stream modes secure a
 * cartridge per stream before they start. Best effort against other jobs claiming them
 * meanwhile: a stream that finds none waits as on a tape library.
 */
export function provisionCartridges(catalog: Catalog, lib: Library, count: number): void {
  if (lib.kind !== 'disk') return;
  const free = catalog.media(lib.name).filter((m) => (m.state === 'scratch' || m.state === 'filling') && lib.present(m.barcode) && !lib.cartridgeClaimed(m.barcode)).length;
  for (let i = free; i < count; i++) newDiskCartridge(catalog, lib).lock.release();
}

/** A full file system under a disk library, said as such: the job's error names the directory and what is free. */
export function diskFull(lib: Library, e: PlexusError, what?: string): PlexusError {
  const space = fileSystemSpace(lib.cartridgeDir);
  const free = space ? `, ${formatBytes(space.free)} free of ${formatBytes(space.total)}` : '';
  return new PlexusError('E_NOSPC', `${what ? `${what}: ` : ''}the file system of disk library ${lib.name} (${lib.cartridgeDir}) is full${free}: ${e.message}`, { cause: e });
}
