/** Declares `plexus demo` (run by ../commands/demo.ts). */
import { Command } from '../commander.js';
import { lazy } from '../lazy.js';

/** Registers the demo command. */
export function demoCommand(): Command {
  return new Command('demo')
    .description('mirror a volume, split it, back the split image up to tape, restore it and resync, verifying every step')
    .option('--size <size>', 'demo volume size', '128M')
    .action(
      lazy(
        () => import('../commands/demo.js'),
        (m) => m.runDemoCommand,
      ),
    );
}
