/** Declares `plexus copy SRC DST` (run by ../commands/copy.ts). */
import { Command } from '../commander.js';
import { lazy } from '../lazy.js';

/** Registers the copy command. */
export function copyCommand(): Command {
  return new Command('copy')
    .description('copy a volume onto another (created with the same geometry if missing)')
    .argument('<src>', 'source volume')
    .argument('<dst>', 'destination volume')
    .option('--threads <n>', 'worker threads (default: one per core)')
    .option('--chunk <size>', 'bytes per chunk', '4M')
    .option('--no-sync', 'do not fsync the destination at the end')
    .option('--max-rate <size>', 'copy pace per second, e.g. 100M (default: as fast as possible)')
    .option('--json', 'print the report as JSON')
    .action(
      lazy(
        () => import('../commands/copy.js'),
        (m) => m.runCopy,
      ),
    );
}
