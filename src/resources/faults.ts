/**
 * Fault injection for the backup manager's resources (MISSION D6): a drive, copy
 * device, server, switch or cartridge can be told to fail after N bytes, to hang (the
 * job times out) or to go unavailable. Faults are rows of the catalog, so a test or an
 * operator injects them from one process and the job running in another sees them.
 *
 * The inventory only records faults; `unavailable` ones make `secureStreams` skip the
 * resource, and the data path of a stream asks `faultsFor` its components to act out
 * the others.
 */
import { PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { Inventory } from './inventory.js';
import { logBackupManager } from './log.js';

export type FaultKind = 'fail-after' | 'hang' | 'stuck' | 'unavailable';

/** What to inject: fail after a number of bytes, hang (at once, or once `afterBytes`
 * went through), get stuck (a hang in a system call that ignores cancellation: the
 * job gives the device up at its timeout and marks it unavailable), or go unavailable. */
export type FaultSpec = { afterBytes: number } | { hang: true; afterBytes?: number } | { stuck: true; afterBytes?: number } | { unavailable: true };

/** One row of the `faults` table. */
export interface FaultRow {
  id: number;
  target: string;
  kind: FaultKind;
  /** For `fail-after`: bytes that pass before the failure. */
  afterBytes: number | null;
  createdAt: string;
}

/** The fault a stream meets, combined over its components. */
export interface EffectiveFault {
  /** The smallest `fail-after` among the components, or null. */
  failAfterBytes: number | null;
  hang: boolean;
  /** With `hang`: bytes that pass before the first hang (0: at once). */
  hangAfterBytes: number | null;
  /** Bytes that pass before the stream gets stuck for good (absent: it does not). */
  stuckAfterBytes?: number;
  unavailable: boolean;
  /** The components with any fault, by name. */
  targets: string[];
}

/** The kind and byte count a spec stands for; E_INVALID unless exactly one is given. */
export function parseFaultSpec(spec: FaultSpec): { kind: FaultKind; afterBytes: number | null } {
  const s = spec as Partial<{ afterBytes: number; hang: boolean; stuck: boolean; unavailable: boolean }>;
  const given = [s.afterBytes !== undefined && s.hang !== true && s.stuck !== true, s.hang === true, s.stuck === true, s.unavailable === true].filter(Boolean).length;
  if (given !== 1) throw new PlexusError('E_INVALID', 'a fault is exactly one of: fail after N bytes, hang (after N bytes), stuck (after N bytes), unavailable');
  if (s.afterBytes !== undefined && (!Number.isSafeInteger(s.afterBytes) || s.afterBytes < 0)) {
    throw new PlexusError('E_INVALID', `fault byte counts must be whole numbers of bytes, not ${String(s.afterBytes)}`);
  }
  if (s.hang) return { kind: 'hang', afterBytes: s.afterBytes ?? null };
  if (s.stuck) return { kind: 'stuck', afterBytes: s.afterBytes ?? null };
  if (s.afterBytes !== undefined) return { kind: 'fail-after', afterBytes: s.afterBytes };
  return { kind: 'unavailable', afterBytes: null };
}

/** Combines fault rows: the smallest fail-after, any hang, any unavailable. */
export function effectiveFault(rows: readonly FaultRow[]): EffectiveFault {
  const after = rows.filter((r) => r.kind === 'fail-after').map((r) => r.afterBytes!);
  const hangs = rows.filter((r) => r.kind === 'hang').map((r) => r.afterBytes ?? 0);
  const stucks = rows.filter((r) => r.kind === 'stuck').map((r) => r.afterBytes ?? 0);
  return {
    ...(stucks.length ? { stuckAfterBytes: Math.min(...stucks) } : {}),
    failAfterBytes: after.length ? Math.min(...after) : null,
    hang: hangs.length > 0,
    hangAfterBytes: hangs.length ? Math.min(...hangs) : null,
    unavailable: rows.some((r) => r.kind === 'unavailable'),
    targets: [...new Set(rows.map((r) => r.target))].sort(),
  };
}

function withInventory<T>(home: Home, fn: (inv: Inventory) => T): T {
  const inv = Inventory.open(home);
  try {
    return fn(inv);
  } finally {
    inv.close();
  }
}

/**
 * Injects a fault into a resource (E_NOENT if there is none of that name), replacing
 * a fault of the same kind there.
 */
export function injectFault(home: Home, target: string, spec: FaultSpec): FaultRow {
  const { kind, afterBytes } = parseFaultSpec(spec);
  const row = withInventory(home, (inv) => inv.addFault(target, kind, afterBytes));
  logBackupManager(home, `fault injected: ${target} ${kind}${afterBytes === null ? '' : ` ${afterBytes}`}`);
  return row;
}

/** Clears the faults of `target` (E_NOENT if unknown), or every fault; returns how many. */
export function clearFaults(home: Home, target?: string): number {
  const n = withInventory(home, (inv) => inv.clearFaults(target));
  if (n > 0) logBackupManager(home, `faults cleared: ${target ?? 'all'} (${n})`);
  return n;
}

/** Every injected fault, by target. */
export function listFaults(home: Home): FaultRow[] {
  return withInventory(home, (inv) => inv.faults());
}

/** The effective fault of a stream's components (names unknown to the inventory have none). */
export function faultsFor(home: Home, names: readonly string[]): EffectiveFault {
  const inv = Inventory.open(home, { sync: false });
  try {
    return effectiveFault(inv.faults(names));
  } finally {
    inv.close();
  }
}
