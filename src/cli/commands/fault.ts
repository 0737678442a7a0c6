/** `plexus fault inject|clear|list`: make a resource fail after N bytes, hang or go unavailable (declared in ../tree/fault.ts). */

import { PlexusError } from '../../errors.js';
import { clearFaults, type FaultSpec, injectFault, listFaults } from '../../resources/faults.js';
import { describeFault } from '../../resources/inventory.js';
import { type GlobalOptions, homeOf, sizeOpt } from '../context.js';
import { printJson, printTable } from '../render/output.js';

/** `fault inject`. */
export function runFaultInject(target: string, o: GlobalOptions & { after?: string; hang?: boolean; stuck?: boolean; unavailable?: boolean; json?: boolean }): void {
  const given = [o.after !== undefined && !o.hang && !o.stuck, o.hang, o.stuck, o.unavailable].filter(Boolean).length;
  if (given !== 1) throw new PlexusError('E_INVALID', 'give exactly one of --after BYTES, --hang [--after BYTES], --stuck [--after BYTES], --unavailable');
  const after = o.after === undefined ? undefined : sizeOpt(o.after, 'fault byte count')!;
  const bytes = after === undefined ? {} : { afterBytes: after };
  const spec: FaultSpec = o.hang ? { hang: true, ...bytes } : o.stuck ? { stuck: true, ...bytes } : after !== undefined ? { afterBytes: after } : { unavailable: true };
  const f = injectFault(homeOf(o), target, spec);
  if (o.json) {
    printJson(f);
    return;
  }
  process.stdout.write(`injected ${describeFault(f)} into ${f.target}\n`);
}

/** `fault clear`. */
export function runFaultClear(target: string | undefined, o: GlobalOptions): void {
  const n = clearFaults(homeOf(o), target);
  process.stdout.write(`cleared ${n} fault${n === 1 ? '' : 's'}${target ? ` of ${target}` : ''}\n`);
}

/** `fault list`. */
export function runFaultList(o: GlobalOptions & { json?: boolean }): void {
  const faults = listFaults(homeOf(o));
  if (o.json) {
    printJson(faults);
    return;
  }
  if (faults.length === 0) return void process.stdout.write('no faults\n');
  printTable(
    ['TARGET', 'KIND', 'AFTER', 'SINCE'],
    faults.map((f) => [f.target, f.kind, f.afterBytes === null ? '-' : String(f.afterBytes), f.createdAt]),
  );
}
