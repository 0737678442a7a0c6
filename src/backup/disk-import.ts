/**
 * `plexus library import NAME --disk DIR`: a disk library's directory attached to a home
 * (a home lost and made anew, or the directory moved), and its jobs read back from its
 * cartridges into the catalog (a rebuild of that library only), in one step.
 */
import { Catalog } from '../catalog/catalog.js';
import { guarded } from '../errors.js';
import type { Home } from '../home/home.js';
import type { Library } from '../tape/library.js';
import { attachDiskLibrary, type DiskLibraryOptions } from './libraries.js';
import { type RebuildReport, rebuildCatalog } from './rebuild.js';

/** Options of an import. */
export interface ImportOptions extends Pick<DiskLibraryOptions, 'drives' | 'prefix'> {
  /** Read the jobs from the cartridges (default true). */
  rebuild?: boolean;
  onLog?: (line: string) => void;
  signal?: AbortSignal;
}

/** Attaches the disk library in `dir` as `name` and rebuilds its part of the catalog. Every failure is a PlexusError. */
export function importDiskLibrary(home: Home, name: string, dir: string, opts: ImportOptions = {}): Promise<{ library: Library; rebuild?: RebuildReport }> {
  return guarded(async () => {
    const catalog = Catalog.open(home);
    let library: Library;
    try {
      library = attachDiskLibrary(home, catalog, name, dir, opts);
    } finally {
      catalog.close();
    }
    if (opts.rebuild === false) return { library };
    const rebuild = await rebuildCatalog(home, { library: name, onLog: opts.onLog, signal: opts.signal });
    return { library, rebuild };
  });
}
