/** The commander program: global options and the command tree. */
import { Command } from 'commander';
import { backupCommand, catalogCommand, restoreCommand } from './commands/backup.js';
import { benchCommand } from './commands/bench.js';
import { copyCommand } from './commands/copy.js';
import { demoCommand } from './commands/demo.js';
import { faultCommand } from './commands/fault.js';
import { initCommand } from './commands/init.js';
import { libraryCommand, tapeCommand } from './commands/library.js';
import { pairCommand } from './commands/pair.js';
import { resourcesCommand } from './commands/resources.js';
import { volumeCommand } from './commands/volume.js';

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
