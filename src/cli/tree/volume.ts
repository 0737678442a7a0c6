/** Declares `plexus volume create|list|show|rm|write|read|checksum` (run by ../commands/volume.ts). */
import { Command } from '../commander.js';
import { lazy } from '../lazy.js';

const load = () => import('../commands/volume.js');

/** Registers the volume commands. */
export function volumeCommand(): Command {
  const cmd = new Command('volume').description('create and inspect volumes');

  cmd
    .command('create <name>')
    .description('create a sparse volume')
    .requiredOption('--size <size>', 'size, e.g. 64M, 1G')
    .option('--block-size <size>', 'block size, a power of two from 512 to 1M', '4K')
    .option('--json', 'print the new volume as JSON')
    .action(lazy(load, (m) => m.runVolumeCreate));

  cmd
    .command('list')
    .description('list volumes')
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runVolumeList));

  cmd
    .command('show <name>')
    .description('show a volume')
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runVolumeShow));

  cmd
    .command('rm <name>')
    .description('delete a volume')
    .action(lazy(load, (m) => m.runVolumeRm));

  cmd
    .command('write <name>')
    .description('write a byte pattern, seeded random bytes or a file into a volume (a pair suspended on the way is reported on stderr)')
    .option('--offset <size>', 'where to start', '0')
    .option('--pattern <byte>', 'a byte value 0-255 (needs --length)')
    .option('--length <size>', 'bytes of --pattern to write')
    .option('--random <size>', 'write this many pseudo-random bytes')
    .option('--seed <n>', 'seed for --random', '1')
    .option('--from <file>', 'write the contents of a file')
    .action(lazy(load, (m) => m.runVolumeWrite));

  cmd
    .command('read <name>')
    .description('read bytes from a volume to a file or stdout')
    .option('--offset <size>', 'where to start')
    .option('--length <size>', 'how many bytes (default: to the end)')
    .option('--to <file>', 'write to this file instead of stdout')
    .action(lazy(load, (m) => m.runVolumeRead));

  cmd
    .command('checksum <name>')
    .description('print the SHA-256 of a volume or a range of it')
    .option('--offset <size>', 'where to start')
    .option('--length <size>', 'how many bytes (default: to the end)')
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runVolumeChecksum));

  return cmd;
}
