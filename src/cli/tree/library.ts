/** Declares `plexus library create|list|show|rm` and `plexus tape list` (run by ../commands/library.ts). */
import { Command } from '../commander.js';
import { lazy } from '../lazy.js';

const load = () => import('../commands/library.js');

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
    .action(lazy(load, (m) => m.runLibraryCreate));

  cmd
    .command('list')
    .description('list libraries')
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runLibraryList));

  cmd
    .command('show <name>')
    .description('show a library: drives (and what they hold) and slots')
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
