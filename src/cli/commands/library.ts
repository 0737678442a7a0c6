/** `plexus library create|list|show|rm` and `plexus tape list`: virtual tape libraries (declared in ../tree/library.ts). */
import { createLibrary, register, removeLibrary } from '../../backup/libraries.js';
import { Catalog, type MediaRow } from '../../catalog/catalog.js';
import { Library } from '../../tape/library.js';
import { formatBytes, parseSize } from '../../util/size.js';
import { type GlobalOptions, homeOf, intOpt, sizeOpt } from '../context.js';
import { printFields, printJson, printTable } from '../render/output.js';

function mediaRows(media: MediaRow[]): string[][] {
  return media.map((m) => [m.barcode, m.library, String(m.slot), m.state, formatBytes(m.bytes), formatBytes(m.capacity), `${Math.floor((m.bytes / m.capacity) * 100)}%`]);
}

/** `library create`: creates the home when it is missing. */
export function runLibraryCreate(name: string, o: GlobalOptions & { slots: string; drives: string; cartridgeSize: string; blockSize: string; prefix?: string; json?: boolean }): void {
  const home = homeOf(o, { create: true });
  const catalog = Catalog.open(home);
  try {
    const lib = createLibrary(home, catalog, name, {
      slots: intOpt(o.slots, 'slots', 1, 10_000)!,
      drives: intOpt(o.drives, 'drives', 1, 256)!,
      cartridgeSize: parseSize(o.cartridgeSize, 'cartridge size'),
      blockSize: sizeOpt(o.blockSize, 'block size'),
      prefix: o.prefix,
    });
    if (o.json) {
      printJson(lib.config);
      return;
    }
    process.stdout.write(
      `created library ${name}: ${lib.config.slots} cartridges of ${formatBytes(lib.config.cartridgeSize)} (${lib.config.cartridges[0]!.barcode}…), ${lib.config.drives} drive${lib.config.drives === 1 ? '' : 's'}\n`,
    );
  } finally {
    catalog.close();
  }
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
        scratch: media.filter((m) => m.state === 'scratch').length,
        bytes: media.reduce((a, m) => a + m.bytes, 0),
        busyDrives: l.drives().filter((d) => d.busy).length,
      };
    });
    if (o.json) {
      printJson(libs);
      return;
    }
    if (libs.length === 0) return void process.stdout.write('no libraries\n');
    printTable(
      ['NAME', 'SLOTS', 'DRIVES', 'BUSY', 'CARTRIDGE', 'SCRATCH', 'USED'],
      libs.map((l) => [l.name, String(l.slots), String(l.drives), String(l.busyDrives), formatBytes(l.cartridgeSize), String(l.scratch), formatBytes(l.bytes)]),
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
    if (o.json) {
      printJson({ ...lib.config, dir: lib.dir, drives: drives, media });
      return;
    }
    printFields([
      ['library', lib.name],
      ['directory', lib.dir],
      ['slots', lib.config.slots],
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
