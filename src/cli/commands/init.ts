/** `plexus init`: create the storage home. */
import { Command } from 'commander';
import { Home, resolveHomeDir } from '../../home/home.js';
import type { GlobalOptions } from '../context.js';

/** Registers the init command. */
export function initCommand(): Command {
  return new Command('init').description('create the storage home').action((_o: unknown, c: Command) => {
    const dir = resolveHomeDir(c.optsWithGlobals<GlobalOptions>().home);
    const made = Home.init(dir);
    Home.open(dir);
    process.stdout.write(made ? `initialised Plexus home ${dir}\n` : `Plexus home ${dir} already exists\n`);
  });
}
