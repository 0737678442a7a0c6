/** Declares `plexus library create|import|list|show|rm` and `plexus tape list` (run by ../commands/library.ts). */
import { Command } from '../commander.js';
import { lazy } from '../lazy.js';

const load = () => import('../commands/library.js');

/** Registers the library commands. */
export function libraryCommand(): Command {
  const cmd = new Command('library').description('virtual tape libraries (slots, drives, cartridges) and disk libraries (cartridge files in a directory)');

  cmd
    .command('create <name>')
    .description('create a tape library with a cartridge in every slot, or (--disk) a disk library whose cartridges are files in a directory')
    .option('--slots <n>', 'tape: number of slots (each gets a blank cartridge)')
    .option('--drives <n>', 'number of drives (tape: required; disk: concurrent jobs, default 4)')
    .option('--cartridge-size <size>', 'tape: capacity of each cartridge, e.g. 256M')
    .option('--disk <dir>', 'a disk library keeping its cartridge files in DIR (created if missing; outside the home, typically on another file system); cartridges are made as jobs need them')
    .option('--volume-size <size>', 'disk: capacity of each cartridge file, default 64G (sparse: it takes what it holds)')
    .option('--block-size <size>', 'block size of the cartridges (default: tape 256K, disk 1M)')
    .option('--prefix <letters>', 'barcode prefix (default: from the name)')
    .option('--json', 'print the library as JSON')
    .action(lazy(load, (m) => m.runLibraryCreate));

  cmd
    .command('import <name>')
    .description("attach an existing disk library's directory to this home (a lost home made anew) and read its jobs back from the cartridges")
    .requiredOption('--disk <dir>', 'the directory holding its cartridge files')
    .option('--drives <n>', 'concurrent jobs', '4')
    .option('--prefix <letters>', "barcode prefix of its cartridges (default: the directory's marker, else the one its files have)")
    .option('--no-rebuild', 'attach only: do not read the jobs from the cartridges (plexus catalog rebuild --library NAME does)')
    .option('--json', 'print the result as JSON')
    .action(lazy(load, (m) => m.runLibraryImport));

  cmd
    .command('list')
    .description('list libraries')
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runLibraryList));

  cmd
    .command('show <name>')
    .description('show a library: drives (and what they hold), cartridges, and for a disk library its directory and free space')
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runLibraryShow));
  cmd
    .command('rm <name>')
    .description('remove a library and its cartridges')
    .option('--force', 'also when its cartridges hold backups (the catalog forgets those jobs)')
    .action(lazy(load, (m) => m.runLibraryRm));
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
    .action(lazy(load, (m) => m.runTapeList));
  return cmd;
}
