/** `plexus library create|list|show` and `plexus tape list`: virtual tape libraries. */
import { Command } from 'commander';
import { createLibrary, register, removeLibrary } from '../../backup/libraries.js';
import { Catalog, type MediaRow } from '../../catalog/catalog.js';
import { Library } from '../../tape/library.js';
import { formatBytes, parseSize } from '../../util/size.js';
import { homeOf, intOpt, sizeOpt } from '../context.js';
import { printFields, printJson, printTable } from '../render/output.js';

function mediaRows(media: MediaRow[]): string[][] {
  return media.map((m) => [m.barcode, m.library, String(m.slot), m.state, formatBytes(m.bytes), formatBytes(m.capacity), `${Math.floor((m.bytes / m.capacity) * 100)}%`]);
}

/** Registers the library commands. */
export function libraryCommand(): Command {
  const cmd = new Command('library').description('virtual tape libraries: slots, drives and cartridges');

  cmd
    .command('create <name>')
    .description('create a library with a cartridge in every slot')
    .requiredOption('--slots <n>', 'number of slots (each gets a blank cartridge)')
    .requiredOption('--drives <n>', 'number of drives')
    .requiredOption('--cartridge-size <size>', 'capacity of each cartridge, e.g. 256M')
    .option('--block-size <size>', 'tape block size', '256K')
    .option('--prefix <letters>', 'barcode prefix (default: from the name)')
    .option('--json', 'print the library as JSON')
    .action((name: string, o: { slots: string; drives: string; cartridgeSize: string; blockSize: string; prefix?: string; json?: boolean }, c: Command) => {
      const home = homeOf(c);
      const catalog = Catalog.open(home);
      try {
        const lib = createLibrary(home, catalog, name, {
          slots: intOpt(o.slots, 'slots', 1, 10_000)!,
          drives: intOpt(o.drives, 'drives', 1, 256)!,
          cartridgeSize: parseSize(o.cartridgeSize, 'cartridge size'),
          blockSize: sizeOpt(o.blockSize, 'block size'),
          prefix: o.prefix,
        });
        if (o.json) return printJson(lib.config);
        process.stdout.write(
          `created library ${name}: ${lib.config.slots} cartridges of ${formatBytes(lib.config.cartridgeSize)} (${lib.config.cartridges[0]!.barcode}…), ${lib.config.drives} drive${lib.config.drives === 1 ? '' : 's'}\n`,
        );
      } finally {
        catalog.close();
      }
    });

  cmd
    .command('list')
    .description('list libraries')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }, c: Command) => {
      const home = homeOf(c);
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
        if (o.json) return printJson(libs);
        if (libs.length === 0) return void process.stdout.write('no libraries\n');
        printTable(
          ['NAME', 'SLOTS', 'DRIVES', 'BUSY', 'CARTRIDGE', 'SCRATCH', 'USED'],
          libs.map((l) => [l.name, String(l.slots), String(l.drives), String(l.busyDrives), formatBytes(l.cartridgeSize), String(l.scratch), formatBytes(l.bytes)]),
        );
      } finally {
        catalog.close();
      }
    });

  cmd
    .command('show <name>')
    .description('show a library: drives (and what they hold) and slots')
    .option('--json', 'print JSON')
    .action((name: string, o: { json?: boolean }, c: Command) => {
      const home = homeOf(c);
      const lib = Library.open(home, name);
      const catalog = Catalog.open(home);
      try {
        register(catalog, lib, false);
        const media = catalog.media(lib.name);
        const drives = lib.drives();
        if (o.json) return printJson({ ...lib.config, dir: lib.dir, drives: drives, media });
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
    });
  cmd
    .command('rm <name>')
    .description('remove a library and its cartridges')
    .option('--force', 'also when its cartridges hold backups (the catalog forgets those jobs)')
    .action((name: string, o: { force?: boolean }, c: Command) => {
      const home = homeOf(c);
      const catalog = Catalog.open(home);
      try {
        const r = removeLibrary(home, catalog, name, o.force);
        process.stdout.write(`removed library ${name}${r.forgottenJobs.length ? ` and the backups of jobs ${r.forgottenJobs.join(', ')}` : ''}\n`);
      } finally {
        catalog.close();
      }
    });
  return cmd;
}

/** Registers `tape list`. */
export function tapeCommand(): Command {
  const cmd = new Command('tape').description('cartridges');
  cmd
    .command('list')
    .description('list cartridges: barcode, library, slot, state, bytes')
    .option('--library <name>', 'only this library')
    .option('--json', 'print JSON')
    .action((o: { library?: string; json?: boolean }, c: Command) => {
      const home = homeOf(c);
      const libs = o.library ? [Library.open(home, o.library)] : Library.list(home);
      const catalog = Catalog.open(home);
      try {
        for (const l of libs) register(catalog, l, false);
        const media = libs.flatMap((l) => catalog.media(l.name));
        if (o.json) return printJson(media);
        if (media.length === 0) return void process.stdout.write('no cartridges\n');
        printTable(['BARCODE', 'LIBRARY', 'SLOT', 'STATE', 'USED', 'CAPACITY', 'FULL'], mediaRows(media));
      } finally {
        catalog.close();
      }
    });
  return cmd;
}
