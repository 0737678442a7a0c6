/** `plexus library create|import|list|show|rm` and `plexus tape list`: virtual tape libraries (declared in ../tree/library.ts). */
import { importDiskLibrary } from '../../backup/disk-import.js';
import { createDiskLibrary, createLibrary, register, removeLibrary } from '../../backup/libraries.js';
import { Catalog, type MediaRow } from '../../catalog/catalog.js';
import { PlexusError } from '../../errors.js';
import { allocatedBytes, fileSystemSpace } from '../../tape/disk-library.js';
import { Library } from '../../tape/library.js';
import { formatBytes, parseSize } from '../../util/size.js';
import { cancellable } from '../cancel.js';
import { type GlobalOptions, homeOf, intOpt, sizeOpt } from '../context.js';
import { printFields, printJson, printTable } from '../render/output.js';

function mediaRows(media: MediaRow[]): string[][] {
  return media.map((m) => [m.barcode, m.library, String(m.slot), m.state, formatBytes(m.bytes), formatBytes(m.capacity), `${Math.floor((m.bytes / m.capacity) * 100)}%`]);
}

type CreateFlags = GlobalOptions & {
  slots?: string;
  drives?: string;
  cartridgeSize?: string;
  disk?: string;
  volumeSize?: string;
  blockSize?: string;
  prefix?: string;
  json?: boolean;
};

/** `library create`: a tape library, or with --disk a disk library; creates the home when it is missing. */
export function runLibraryCreate(name: string, o: CreateFlags): void {
  if (o.disk !== undefined) {
    const wrong = (['slots', 'cartridgeSize'] as const).filter((k) => o[k] !== undefined);
    if (wrong.length > 0) {
      throw new PlexusError(
        'E_INVALID',
        `--slots and --cartridge-size describe a tape library: a disk library has no fixed slots (it makes cartridges as jobs need them) and --volume-size sets the size of each cartridge file`,
      );
    }
  } else {
    if (o.volumeSize !== undefined) throw new PlexusError('E_INVALID', '--volume-size is for a disk library (--disk DIR); a tape library takes --cartridge-size');
    for (const [flag, v] of [
      ['--slots', o.slots],
      ['--drives', o.drives],
      ['--cartridge-size', o.cartridgeSize],
    ] as const) {
      if (v === undefined) throw new PlexusError('E_INVALID', `a tape library needs ${flag} (or --disk DIR for a disk library)`);
    }
  }
  const home = homeOf(o, { create: true });
  const catalog = Catalog.open(home);
  try {
    const blockSize = sizeOpt(o.blockSize, 'block size');
    const lib =
      o.disk !== undefined
        ? createDiskLibrary(home, catalog, name, o.disk, {
            drives: intOpt(o.drives, 'drives', 1, 256),
            volumeSize: o.volumeSize === undefined ? undefined : parseSize(o.volumeSize, 'volume size'),
            blockSize,
            prefix: o.prefix,
          })
        : createLibrary(home, catalog, name, {
            slots: intOpt(o.slots, 'slots', 1, 10_000)!,
            drives: intOpt(o.drives, 'drives', 1, 256)!,
            cartridgeSize: parseSize(o.cartridgeSize!, 'cartridge size'),
            blockSize,
            prefix: o.prefix,
          });
    if (o.json) {
      printJson(lib.config);
      return;
    }
    const drives = `${lib.config.drives} drive${lib.config.drives === 1 ? '' : 's'}`;
    process.stdout.write(
      lib.kind === 'disk'
        ? `created disk library ${name} in ${lib.cartridgeDir}: cartridge files of ${formatBytes(lib.config.cartridgeSize)} (${lib.config.cartridges[0]!.barcode}, more as jobs need them), ${drives}\n`
        : `created library ${name}: ${lib.config.slots} cartridges of ${formatBytes(lib.config.cartridgeSize)} (${lib.config.cartridges[0]!.barcode}…), ${drives}\n`,
    );
  } finally {
    catalog.close();
  }
}

/** `library import`: attaches a disk library's directory and reads its jobs back. */
export async function runLibraryImport(name: string, o: GlobalOptions & { disk: string; drives: string; prefix?: string; rebuild: boolean; json?: boolean }): Promise<void> {
  const home = homeOf(o, { create: true });
  const r = await cancellable((signal) =>
    importDiskLibrary(home, name, o.disk, {
      drives: intOpt(o.drives, 'drives', 1, 256),
      prefix: o.prefix,
      rebuild: o.rebuild,
      signal,
      onLog: (l) => {
        if (!o.json) process.stderr.write(`${l}\n`);
      },
    }),
  );
  const lib = r.library;
  if (o.json) {
    printJson({ library: { ...lib.config, cartridgeDir: lib.cartridgeDir }, rebuild: r.rebuild ?? null });
    return;
  }
  process.stdout.write(
    `imported disk library ${name} from ${lib.cartridgeDir}: ${lib.config.cartridges.length} cartridge${lib.config.cartridges.length === 1 ? '' : 's'} (prefix ${lib.config.prefix})\n`,
  );
  if (r.rebuild) {
    process.stdout.write(`read back ${r.rebuild.jobs} job${r.rebuild.jobs === 1 ? '' : 's'} (${r.rebuild.segments} segments) from ${r.rebuild.cartridges} cartridges\n`);
    for (const p of r.rebuild.problems) process.stdout.write(`  problem: ${p}\n`);
  }
}

/** What `library list` and `library show` say about a library's cartridges and space. */
function usage(l: Library, media: MediaRow[]) {
  const space = l.kind === 'disk' ? fileSystemSpace(l.cartridgeDir) : undefined;
  return {
    kind: l.kind,
    cartridgeDir: l.cartridgeDir,
    cartridges: media.length,
    scratch: media.filter((m) => m.state === 'scratch').length,
    missing: media.filter((m) => m.state === 'missing' || !l.present(m.barcode)).length,
    bytes: media.reduce((a, m) => a + m.bytes, 0),
    // The cartridge files are sparse: what they take on their file system.
    allocatedBytes: allocatedBytes(
      l.cartridgeDir,
      media.map((m) => m.barcode),
    ),
    freeBytes: space?.free ?? null,
    totalBytes: space?.total ?? null,
  };
}

/** `library list`. */
export function runLibraryList(o: GlobalOptions & { json?: boolean }): void {
  const home = homeOf(o);
  const catalog = Catalog.open(home);
  try {
    const libs = Library.list(home).map((l) => {
      register(catalog, l, false);
      const media = catalog.media(l.name);
      return {
        name: l.name,
        slots: l.config.slots,
        drives: l.config.drives,
        cartridgeSize: l.config.cartridgeSize,
        blockSize: l.config.blockSize,
        ...usage(l, media),
        busyDrives: l.drives().filter((d) => d.busy).length,
      };
    });
    if (o.json) {
      printJson(libs);
      return;
    }
    if (libs.length === 0) return void process.stdout.write('no libraries\n');
    printTable(
      ['NAME', 'KIND', 'SLOTS', 'DRIVES', 'BUSY', 'CARTRIDGE', 'SCRATCH', 'USED', 'FREE', 'DIRECTORY'],
      libs.map((l) => [
        l.name,
        l.kind,
        l.kind === 'disk' ? '-' : String(l.slots),
        String(l.drives),
        String(l.busyDrives),
        formatBytes(l.cartridgeSize),
        String(l.scratch),
        formatBytes(l.bytes),
        l.freeBytes === null ? '-' : formatBytes(l.freeBytes),
        l.kind === 'disk' ? l.cartridgeDir : '-',
      ]),
    );
  } finally {
    catalog.close();
  }
}

/** `library show`. */
export function runLibraryShow(name: string, o: GlobalOptions & { json?: boolean }): void {
  const home = homeOf(o);
  const lib = Library.open(home, name);
  const catalog = Catalog.open(home);
  try {
    register(catalog, lib, false);
    const media = catalog.media(lib.name);
    const drives = lib.drives();
    const u = usage(lib, media);
    if (o.json) {
      // `dir`: where the library's cartridges are (a disk library's own directory); `libraryDir`: its directory in the home.
      printJson({ ...lib.config, dir: lib.kind === 'disk' ? lib.cartridgeDir : lib.dir, libraryDir: lib.dir, ...u, drives: drives, media });
      return;
    }
    printFields([
      ['library', lib.name],
      ['kind', lib.kind],
      ['directory', lib.dir],
      ...(lib.kind === 'disk'
        ? ([
            ['cartridge directory', lib.cartridgeDir],
            ['cartridges', `${u.cartridges} (${u.scratch} scratch${u.missing ? `, ${u.missing} missing` : ''}; more are made as jobs need them)`],
            ['used', `${formatBytes(u.bytes)} of data, ${formatBytes(u.allocatedBytes)} on disk`],
            ['free', u.freeBytes === null ? `unknown (${lib.cartridgeDir} cannot be read)` : `${formatBytes(u.freeBytes)} of ${formatBytes(u.totalBytes!)}`],
          ] as Array<[string, string]>)
        : ([['slots', lib.config.slots]] as Array<[string, number]>)),
      ['cartridge size', formatBytes(lib.config.cartridgeSize)],
      ['block size', formatBytes(lib.config.blockSize)],
    ]);
    process.stdout.write('\n');
    printTable(
      ['DRIVE', 'STATE', 'LOADED', 'PID'],
      drives.map((d) => [String(d.drive), d.busy ? 'in use' : 'free', d.loaded ?? '-', d.pid === null ? '-' : String(d.pid)]),
    );
    process.stdout.write('\n');
    printTable(['BARCODE', 'LIBRARY', 'SLOT', 'STATE', 'USED', 'CAPACITY', 'FULL'], mediaRows(media));
  } finally {
    catalog.close();
  }
}

/** `library rm`. */
export function runLibraryRm(name: string, o: GlobalOptions & { force?: boolean }): void {
  const home = homeOf(o);
  const catalog = Catalog.open(home);
  try {
    const r = removeLibrary(home, catalog, name, o.force);
    process.stdout.write(`removed library ${name}${r.forgottenJobs.length ? ` and the backups of jobs ${r.forgottenJobs.join(', ')}` : ''}\n`);
  } finally {
    catalog.close();
  }
}

/** `tape list`. */
export function runTapeList(o: GlobalOptions & { library?: string; json?: boolean }): void {
  const home = homeOf(o);
  const libs = o.library ? [Library.open(home, o.library)] : Library.list(home);
  const catalog = Catalog.open(home);
  try {
    for (const l of libs) register(catalog, l, false);
    const media = libs.flatMap((l) => catalog.media(l.name));
    if (o.json) {
      printJson(media);
      return;
    }
    if (media.length === 0) return void process.stdout.write('no cartridges\n');
    printTable(['BARCODE', 'LIBRARY', 'SLOT', 'STATE', 'USED', 'CAPACITY', 'FULL'], mediaRows(media));
  } finally {
    catalog.close();
  }
}
