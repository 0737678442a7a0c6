/** Declares `plexus pair create|split|resync|display|wait|fill|promote|rotate|stage|delete|checkpoint` (run by ../commands/pair.ts). */

import { PAIR_STATES } from '../../mirror/states.js';
import { Command } from '../commander.js';
import { lazy } from '../lazy.js';

/** Exit status of `pair wait` when the timeout passes first. */
export const EXIT_TIMEOUT = 3;

const load = () => import('../commands/pair.js');

/** Registers the pair commands. */
export function pairCommand(): Command {
  const cmd = new Command('pair').description('mirrored pairs: create, split, resync, display, wait, delete');

  cmd
    .command('create <primary> <secondary>')
    .description('pair two volumes of equal size and copy the primary onto the secondary')
    .option('--group <name>', 'consistency group')
    .option('--granularity <size>', 'bytes per dirty-bitmap bit', '64K')
    .option('--instant', 'split at once without a prior copy; the secondary fills in the background')
    .option('--allow <host...>', 'hosts allowed to access the secondary once it is split (in every state no other host may)')
    .option('--no-write-intent', 'do not fsync a newly dirtied region before acknowledging its write (faster; a crash then needs a full resync)')
    .option('--threads <n>', 'copy threads (default: one per core)')
    .option('--max-rate <size>', 'copy pace per second, e.g. 100M (default: as fast as possible)')
    .option('--background', 'return at once and copy in a detached process')
    .option('--json', 'print the pair as JSON')
    .action(lazy(load, (m) => m.runPairCreate));

  cmd
    .command('split [primary]')
    .description('split pairs at one write boundary; the secondary becomes an independent image')
    .option('--group <name>', 'split every pair of a consistency group together')
    .option('--plex <secondary>', 'split only this plex of the primary')
    .option('--read-only', 'make the split secondary read-only')
    .option('--allow <host...>', 'hosts allowed to access the secondary while split (kept until replaced; no other host may access it in any state)')
    .option('--freeze <cmd>', 'command run before the split (e.g. put a database in backup mode)')
    .option('--thaw <cmd>', 'command run after the split')
    .option('--hook-timeout <seconds>', 'timeout of each hook command', '60')
    .option('--json', 'print the report as JSON')
    .action(lazy(load, (m) => m.runPairSplit));

  cmd
    .command('resync [primary]')
    .description('resynchronise split pairs (only the regions changed on either side), or resume an interrupted copy')
    .option('--group <name>', 'every pair of a consistency group')
    .option('--plex <secondary>', 'only this plex of the primary')
    .option('--full', 'copy everything, not only the dirty regions')
    .option('--reverse', 'restore the primary from the secondary')
    .option('--threads <n>', 'copy threads (default: one per core)')
    .option('--max-rate <size>', 'copy pace per second, e.g. 100M (default: as fast as possible)')
    .option('--background', 'return at once and resync in a detached process')
    .option('--json', 'print the report as JSON')
    .action(lazy(load, (m) => m.runPairResync));

  cmd
    .command('display [primary]')
    .description('show pairs: state, copy progress, dirty bytes')
    .option('--group <name>', 'pairs of a consistency group')
    .option('--plex <secondary>', 'only this plex of the primary')
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runPairDisplay));

  cmd
    .command('wait [primary]')
    .description(`wait until pairs reach a state (exit 0), or the timeout passes (exit ${EXIT_TIMEOUT})`)
    .requiredOption('--state <state>', `one of ${PAIR_STATES.join(', ')}`)
    .option('--group <name>', 'every pair of a consistency group')
    .option('--plex <secondary>', 'only this plex of the primary')
    .option('--timeout <seconds>', 'give up after this long', '3600')
    .action(lazy(load, (m) => m.runPairWait));

  cmd
    .command('fill [primary]')
    .description('finish (or resume) the background fill of instant splits')
    .option('--group <name>', 'every pair of a consistency group')
    .option('--plex <secondary>', 'only this plex of the primary')
    .option('--threads <n>', 'copy threads (default: one per core)')
    .option('--max-rate <size>', 'copy pace per second, e.g. 100M (default: as fast as possible)')
    .option('--json', 'print the report as JSON')
    .action(lazy(load, (m) => m.runPairFill));

  cmd
    .command('promote <primary>')
    .description('restore in seconds: make a split backup plex the live primary (no copy)')
    .requiredOption('--plex <secondary>', 'the backup plex to promote')
    .option('--json', 'print the report as JSON')
    .action(lazy(load, (m) => m.runPairPromote));

  cmd
    .command('rotate <primary>')
    .description('rotate backup plexes: rejoin the oldest offline plex, then split the mirrored one off')
    .requiredOption('--plexes <list>', 'comma-separated plexes taking part in the rotation')
    .option('--read-only', 'make the new backup plex read-only')
    .option('--allow <host...>', 'hosts allowed to access the new backup plex')
    .option('--freeze <cmd>', 'command run before the split')
    .option('--thaw <cmd>', 'command run after the split')
    .option('--json', 'print the report as JSON')
    .action(lazy(load, (m) => m.runPairRotate));

  cmd
    .command('stage <primary>')
    .description('split, copy the split image to a third volume, resync the pair at once')
    .requiredOption('--plex <secondary>', 'the plex to split')
    .requiredOption('--to <volume>', 'the staging volume (created if missing)')
    .option('--freeze <cmd>', 'command run before the split')
    .option('--thaw <cmd>', 'command run after the split')
    .option('--threads <n>', 'copy threads (default: one per core)')
    .option('--json', 'print the report as JSON')
    .action(lazy(load, (m) => m.runPairStage));

  cmd
    .command('delete <primary>')
    .description('dissolve pairs (back to SMPL); both volumes are kept')
    .option('--plex <secondary>', 'only this plex of the primary')
    .action(lazy(load, (m) => m.runPairDelete));

  cmd
    .command('checkpoint <primary>')
    .description('start a new dirty-bitmap generation on a primary at this moment (read over NBD as qemu:dirty-bitmap:checkpoint-N)')
    .option('--release <n>', 'release frozen generation N instead')
    .option('--json', 'print the report as JSON')
    .action(lazy(load, (m) => m.runPairCheckpoint));

  return cmd;
}
