/**
 * Fault injection for the backup manager's resources (MISSION D6): a drive, copy
 * device, server, switch or cartridge can be told to fail after N bytes, to hang (the
 * job times out) or to go unavailable. Faults are rows of the catalog, so a test or an
 * operator injects them from one process and the job running in another sees them.
 *
 * This module owns the `faults` rows: the functions below taking a Catalog read and write
 * them (the inventory lists them, `secureStreams` skips resources with an `unavailable`
 * one, a stream's check combines those of its components); the functions taking a Home
 * are the registry's entry points, each a guarded call that opens the home's catalog.
 * It imports neither inventory.ts nor streams.ts (they import it).
 */
import { Catalog } from '../catalog/catalog.js';
import { guarded, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { recordBackupManager } from './log.js';
import { syncInventory } from './sync.js';

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

// ---- the rows ----

const FAULT_COLUMNS = `id, target, kind, after_bytes AS afterBytes, created_at AS createdAt`;

/** Injected faults, of some targets or all, by target and kind. */
export function faultRows(catalog: Catalog, targets?: readonly string[]): FaultRow[] {
  const all = catalog.db.prepare(`SELECT ${FAULT_COLUMNS} FROM faults ORDER BY target, kind`).all() as FaultRow[];
  return targets ? all.filter((f) => targets.includes(f.target)) : all;
}

function hasResource(catalog: Catalog, name: string): boolean {
  return catalog.db.prepare(`SELECT 1 FROM resources WHERE name = ?`).get(name) !== undefined;
}

/** Records a fault on a resource (E_NOENT if there is none), replacing one of the same kind. */
export function putFault(catalog: Catalog, target: string, kind: FaultKind, afterBytes: number | null): FaultRow {
  if (!hasResource(catalog, target)) throw new PlexusError('E_NOENT', `no resource ${target} to inject a fault into (see \`plexus resources list\`)`);
  catalog.db
    .prepare(
      `INSERT INTO faults (target, kind, after_bytes, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (target, kind) DO UPDATE SET after_bytes = excluded.after_bytes, created_at = excluded.created_at`,
    )
    .run(target, kind, afterBytes, new Date().toISOString());
  return faultRows(catalog, [target]).find((f) => f.kind === kind)!;
}

/** Deletes the faults of one target (E_NOENT if unknown) or of all; returns how many. */
export function deleteFaults(catalog: Catalog, target?: string): number {
  if (target === undefined) return catalog.db.prepare(`DELETE FROM faults`).run().changes;
  if (!hasResource(catalog, target)) throw new PlexusError('E_NOENT', `no resource ${target} in the inventory`);
  return catalog.db.prepare(`DELETE FROM faults WHERE target = ?`).run(target).changes;
}

/** "fail-after 1048576", "hang", "unavailable". */
export function describeFault(f: Pick<FaultRow, 'kind' | 'afterBytes'>): string {
  return f.afterBytes === null ? f.kind : `${f.kind} ${f.afterBytes}`;
}

// ---- the registry ----

/** Runs `fn` on the home's catalog, its libraries' rows registered first when `sync`. */
function withCatalog<T>(home: Home, sync: boolean, fn: (catalog: Catalog) => T): T {
  return guarded(() => {
    const catalog = Catalog.open(home);
    try {
      if (sync) syncInventory(home, catalog);
      return fn(catalog);
    } finally {
      catalog.close();
    }
  });
}

/**
 * Injects a fault into a resource (E_NOENT if there is none of that name), replacing
 * a fault of the same kind there. The log line is written before the fault commits.
 */
export function injectFault(home: Home, target: string, spec: FaultSpec): FaultRow {
  return withCatalog(home, true, (catalog) => {
    const { kind, afterBytes } = parseFaultSpec(spec);
    return catalog.transaction(() => {
      const row = putFault(catalog, target, kind, afterBytes);
      recordBackupManager(home, `fault injected: ${target} ${describeFault(row)}`);
      return row;
    });
  });
}

/** Clears the faults of `target` (E_NOENT if unknown), or every fault; returns how many. */
export function clearFaults(home: Home, target?: string): number {
  return withCatalog(home, true, (catalog) =>
    catalog.transaction(() => {
      const n = deleteFaults(catalog, target);
      if (n > 0) recordBackupManager(home, `faults cleared: ${target ?? 'all'} (${n})`);
      return n;
    }),
  );
}

/** Every injected fault, by target. */
export function listFaults(home: Home): FaultRow[] {
  return withCatalog(home, true, (catalog) => faultRows(catalog));
}

/** The effective fault of a stream's components (names unknown to the inventory have none). */
export function faultsFor(home: Home, names: readonly string[]): EffectiveFault {
  return withCatalog(home, false, (catalog) => effectiveFault(faultRows(catalog, names)));
}
