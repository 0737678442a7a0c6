/** Declares `plexus fault inject|clear|list` (run by ../commands/fault.ts). */
import { Command } from '../commander.js';
import { lazy } from '../lazy.js';

const load = () => import('../commands/fault.js');

/** Registers the fault commands. */
export function faultCommand(): Command {
  const cmd = new Command('fault').description('inject faults into drives, copy devices, servers, switches and cartridges');

  cmd
    .command('inject <target>')
    .description('inject a fault: --after N (fail), --hang [--after N], --stuck [--after N], or --unavailable')
    .option('--after <bytes>', 'fail (or with --hang: hang) after this many bytes pass through it, e.g. 10M')
    .option('--hang', "stop responding (only the job's command timeout notices)")
    .option('--stuck', 'hang in a system call that ignores cancellation: the job gives the device up at its timeout and marks it unavailable')
    .option('--unavailable', 'go unavailable (streams are not secured on it)')
    .option('--json', 'print the fault as JSON')
    .action(lazy(load, (m) => m.runFaultInject));

  cmd
    .command('clear [target]')
    .description('clear the faults of one resource, or all')
    .action(lazy(load, (m) => m.runFaultClear));

  cmd
    .command('list')
    .description('list injected faults')
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runFaultList));
  return cmd;
}
