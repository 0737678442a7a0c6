/** `plexus fault inject|clear|list`: make a resource fail after N bytes, hang or go unavailable. */
import { Command } from 'commander';
import { describeFault } from '../../resources/inventory.js';
import { clearFaults, injectFault, listFaults, type FaultSpec } from '../../resources/faults.js';
import { PlexusError } from '../../errors.js';
import { homeOf, sizeOpt } from '../context.js';
import { printJson, printTable } from '../render/output.js';

/** Registers the fault commands. */
export function faultCommand(): Command {
  const cmd = new Command('fault').description('inject faults into drives, copy devices, servers, switches and cartridges');

  cmd
    .command('inject <target>')
    .description('inject a fault: --after N (fail), --hang [--after N], --stuck [--after N], or --unavailable')
    .option('--after <bytes>', 'fail (or with --hang: hang) after this many bytes pass through it, e.g. 10M')
    .option('--hang', 'stop responding (only the job\'s command timeout notices)')
    .option('--stuck', 'hang in a system call that ignores cancellation: the job gives the device up at its timeout and marks it unavailable')
    .option('--unavailable', 'go unavailable (streams are not secured on it)')
    .option('--json', 'print the fault as JSON')
    .action((target: string, o: { after?: string; hang?: boolean; stuck?: boolean; unavailable?: boolean; json?: boolean }, c: Command) => {
      const given = [o.after !== undefined && !o.hang && !o.stuck, o.hang, o.stuck, o.unavailable].filter(Boolean).length;
      if (given !== 1) throw new PlexusError('E_INVALID', 'give exactly one of --after BYTES, --hang [--after BYTES], --stuck [--after BYTES], --unavailable');
      const after = o.after === undefined ? undefined : sizeOpt(o.after, 'fault byte count')!;
      const bytes = after === undefined ? {} : { afterBytes: after };
      const spec: FaultSpec = o.hang ? { hang: true, ...bytes } : o.stuck ? { stuck: true, ...bytes } : after !== undefined ? { afterBytes: after } : { unavailable: true };
      const f = injectFault(homeOf(c), target, spec);
      if (o.json) return printJson(f);
      process.stdout.write(`injected ${describeFault(f)} into ${f.target}\n`);
    });

  cmd
    .command('clear [target]')
    .description('clear the faults of one resource, or all')
    .action((target: string | undefined, _o: unknown, c: Command) => {
      const n = clearFaults(homeOf(c), target);
      process.stdout.write(`cleared ${n} fault${n === 1 ? '' : 's'}${target ? ` of ${target}` : ''}\n`);
    });

  cmd
    .command('list')
    .description('list injected faults')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }, c: Command) => {
      const faults = listFaults(homeOf(c));
      if (o.json) return printJson(faults);
      if (faults.length === 0) return void process.stdout.write('no faults\n');
      printTable(
        ['TARGET', 'KIND', 'AFTER', 'SINCE'],
        faults.map((f) => [f.target, f.kind, f.afterBytes === null ? '-' : String(f.afterBytes), f.createdAt]),
      );
    });
  return cmd;
}
