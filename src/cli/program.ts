/**
 * The commander program: global options and the command tree. The tree (./tree/*) is
 * declared with commander alone; each action imports its run module (./commands/*) when
 * it runs, so start-up loads neither the library, nor SQLite, nor the native addon.
 */
import { Command } from 'commander';
import { backupCommand, catalogCommand, restoreCommand } from './tree/backup.js';
import { benchCommand } from './tree/bench.js';
import { copyCommand } from './tree/copy.js';
import { demoCommand } from './tree/demo.js';
import { faultCommand } from './tree/fault.js';
import { initCommand } from './tree/init.js';
import { libraryCommand, tapeCommand } from './tree/library.js';
import { pairCommand } from './tree/pair.js';
import { resourcesCommand } from './tree/resources.js';
import { volumeCommand } from './tree/volume.js';

/** Builds the `plexus` program. */
export function buildProgram(): Command {
  const program = new Command('plexus')
    .description('Plexus: split mirrors, dirty-bitmap resync, replication and tape backup for volume files')
    .version('0.1.0')
    .option('--home <dir>', 'storage home (default: $PLEXUS_HOME or ./.plexus)')
    .option('--host <name>', 'host identity for access checks (default: $PLEXUS_HOST or the hostname)')
    .showSuggestionAfterError(true);
  program.addCommand(initCommand());
  program.addCommand(demoCommand());
  program.addCommand(volumeCommand());
  program.addCommand(copyCommand());
  program.addCommand(pairCommand());
  program.addCommand(libraryCommand());
  program.addCommand(tapeCommand());
  program.addCommand(backupCommand());
  program.addCommand(catalogCommand());
  program.addCommand(restoreCommand());
  program.addCommand(resourcesCommand());
  program.addCommand(faultCommand());
  program.addCommand(benchCommand());
  return program;
}
