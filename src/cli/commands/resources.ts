/** `plexus resources list|set|add|rm`: the backup manager's inventory and topology. */
import { Command } from 'commander';
import { DEFINED_KINDS, Inventory, RESOURCE_KINDS, type DefinedKind, type Resource, type ResourceKind, type ResourceState } from '../../resources/inventory.js';
import { PlexusError } from '../../errors.js';
import { homeOf } from '../context.js';
import { printJson, printTable } from '../render/output.js';

function withInventory<T>(c: Command, fn: (inv: Inventory) => T): T {
  const inv = Inventory.open(homeOf(c));
  try {
    return fn(inv);
  } finally {
    inv.close();
  }
}

const dash = (v: string | number | null): string => (v === null || v === '' ? '-' : String(v));

function row(r: Resource): string[] {
  const detail = [r.detail ?? '', ...r.faults.map((f) => `[fault: ${f}]`)].filter(Boolean).join(' ');
  return [r.name, r.kind, r.state, dash(r.jobId), dash(r.stream), dash(r.pid), dash(detail)];
}

/** Registers the resources commands. */
export function resourcesCommand(): Command {
  const cmd = new Command('resources').description('backup servers, copy devices, switches, libraries, drives, cartridges: state and links');

  cmd
    .command('list')
    .description('list resources (state, job and stream holding each) and the switch links')
    .option('--kind <kind>', `only one kind: ${RESOURCE_KINDS.join(', ')}`)
    .option('--json', 'print JSON: { resources, links }')
    .action((o: { kind?: string; json?: boolean }, c: Command) =>
      withInventory(c, (inv) => {
        const resources = inv.list({ kind: o.kind as ResourceKind | undefined });
        const links = o.kind === undefined || o.kind === 'switch' ? inv.links() : [];
        if (o.json) return printJson({ resources, links });
        if (resources.length === 0) process.stdout.write('no resources\n');
        else printTable(['NAME', 'KIND', 'STATE', 'JOB', 'STREAM', 'PID', 'DETAIL'], resources.map(row));
        const switches = resources.filter((r) => r.kind === 'switch');
        if (switches.length > 0) {
          process.stdout.write('\n');
          printTable(['SWITCH', 'CONNECTS'], switches.map((s) => [s.name, (s.connects ?? []).join(', ') || '-']));
        }
      }),
    );

  cmd
    .command('set <name>')
    .description('mark a resource available or unavailable (a job holding it sees the change on its next check)')
    .requiredOption('--state <state>', 'available | unavailable')
    .option('--json', 'print the resource as JSON')
    .action((name: string, o: { state: string; json?: boolean }, c: Command) =>
      withInventory(c, (inv) => {
        const r = inv.setState(name, o.state as ResourceState);
        if (o.json) return printJson(r);
        const held = r.jobId !== null ? ` (held by job ${r.jobId} stream ${r.stream}: it sees this on its next check)` : '';
        process.stdout.write(`${r.kind} ${r.name} is ${r.state}${held}\n`);
      }),
    );

  cmd
    .command('add <kind> <name>')
    .description(`define a ${DEFINED_KINDS.join(', ')}`)
    .option('--connects <names>', 'comma-separated: for a switch, storage / servers / copy devices / libraries / switches; for a server or copy device, its switches')
    .option('--detail <text>', 'a free description')
    .option('--json', 'print the resource as JSON')
    .action((kind: string, name: string, o: { connects?: string; detail?: string; json?: boolean }, c: Command) =>
      withInventory(c, (inv) => {
        if (!(DEFINED_KINDS as readonly string[]).includes(kind)) {
          throw new PlexusError('E_INVALID', `cannot add a '${kind}': add a ${DEFINED_KINDS.join(', ')} (libraries, drives and cartridges come from \`plexus library create\`)`);
        }
        const connects = o.connects === undefined ? [] : o.connects.split(',').map((x) => x.trim()).filter(Boolean);
        const r = inv.add(kind as DefinedKind, name, { connects, detail: o.detail });
        if (o.json) return printJson(r);
        const linked = kind === 'switch' ? r.connects ?? [] : connects;
        process.stdout.write(`added ${kind} ${name}${linked.length ? ` connected to ${linked.join(', ')}` : ''}\n`);
      }),
    );

  cmd
    .command('rm <name>')
    .description('remove a server, copy device or switch and its links')
    .action((name: string, _o: unknown, c: Command) =>
      withInventory(c, (inv) => {
        const r = inv.remove(name);
        process.stdout.write(`removed ${name}${r.links ? ` and ${r.links} link${r.links === 1 ? '' : 's'}` : ''}\n`);
      }),
    );
  return cmd;
}
