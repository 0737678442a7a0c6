/** `plexus resources list|set|add|rm`: the backup manager's inventory and topology (declared in ../tree/resources.ts). */

import { PlexusError } from '../../errors.js';
import { DEFINED_KINDS, type DefinedKind, Inventory, type Resource, type ResourceKind, type ResourceState } from '../../resources/inventory.js';
import { type GlobalOptions, homeOf } from '../context.js';
import { printJson, printTable } from '../render/output.js';

function withInventory<T>(o: GlobalOptions, fn: (inv: Inventory) => T, create = false): T {
  const inv = Inventory.open(homeOf(o, { create }));
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

/** `resources list`. */
export function runResourcesList(o: GlobalOptions & { kind?: string; json?: boolean }): void {
  withInventory(o, (inv) => {
    const resources = inv.list({ kind: o.kind as ResourceKind | undefined });
    const links = o.kind === undefined || o.kind === 'switch' ? inv.links() : [];
    if (o.json) {
      printJson({ resources, links });
      return;
    }
    if (resources.length === 0) process.stdout.write('no resources\n');
    else printTable(['NAME', 'KIND', 'STATE', 'JOB', 'STREAM', 'PID', 'DETAIL'], resources.map(row));
    const switches = resources.filter((r) => r.kind === 'switch');
    if (switches.length > 0) {
      process.stdout.write('\n');
      printTable(
        ['SWITCH', 'CONNECTS'],
        switches.map((s) => [s.name, (s.connects ?? []).join(', ') || '-']),
      );
    }
  });
}

/** `resources set`. */
export function runResourcesSet(name: string, o: GlobalOptions & { state: string; json?: boolean }): void {
  withInventory(o, (inv) => {
    const r = inv.setState(name, o.state as ResourceState);
    if (o.json) {
      printJson(r);
      return;
    }
    const held = r.jobId !== null ? ` (held by job ${r.jobId} stream ${r.stream}: it sees this on its next check)` : '';
    process.stdout.write(`${r.kind} ${r.name} is ${r.state}${held}\n`);
  });
}

/** `resources add`: creates the home when it is missing. */
export function runResourcesAdd(kind: string, name: string, o: GlobalOptions & { connects?: string; detail?: string; json?: boolean }): void {
  withInventory(
    o,
    (inv) => {
      if (!(DEFINED_KINDS as readonly string[]).includes(kind)) {
        throw new PlexusError('E_INVALID', `cannot add a '${kind}': add a ${DEFINED_KINDS.join(', ')} (libraries, drives and cartridges come from \`plexus library create\`)`);
      }
      const connects =
        o.connects === undefined
          ? []
          : o.connects
              .split(',')
              .map((x) => x.trim())
              .filter(Boolean);
      const r = inv.add(kind as DefinedKind, name, { connects, detail: o.detail });
      if (o.json) {
        printJson(r);
        return;
      }
      const linked = kind === 'switch' ? (r.connects ?? []) : connects;
      process.stdout.write(`added ${kind} ${name}${linked.length ? ` connected to ${linked.join(', ')}` : ''}\n`);
    },
    true,
  );
}

/** `resources rm`. */
export function runResourcesRm(name: string, o: GlobalOptions): void {
  withInventory(o, (inv) => {
    const r = inv.remove(name);
    process.stdout.write(`removed ${name}${r.links ? ` and ${r.links} link${r.links === 1 ? '' : 's'}` : ''}\n`);
  });
}
