/** Libraries as the catalog sees them: creating one registers it and its cartridges. */
import fs from 'node:fs';
import type { Catalog } from '../catalog/catalog.js';
import { fromSystem, guarded, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { TapeDrive } from '../tape/drive.js';
import { type CreateLibraryOptions, Library } from '../tape/library.js';
import { register } from '../tape/media.js';

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

/**
 * Removes a library: its directory and cartridges, and what the catalog records of
 * them. E_BUSY while a drive is in use, or (without `force`) while the catalog holds
 * backups on its cartridges. Every failure is a PlexusError.
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
    fs.rmSync(lib.dir, { recursive: true, force: true });
  } catch (e) {
    throw fromSystem(e, lib.dir);
  }
  return { forgottenJobs: jobs };
}
