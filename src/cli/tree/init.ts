/** Declares `plexus init` (run by ../commands/init.ts). */
import { Command } from '../commander.js';
import { lazy } from '../lazy.js';

/** Registers the init command. */
export function initCommand(): Command {
  return new Command('init').description('create the storage home').action(
    lazy(
      () => import('../commands/init.js'),
      (m) => m.runInit,
    ),
  );
}
