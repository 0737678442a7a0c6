/**
 * The backup manager's inventory (JP 2001-095789, Fig. 3-6 and 13): backup servers,
 * copy devices, switches, libraries, drives and cartridges, each available, in use or
 * unavailable, with the job and stream holding it; and the links that say which
 * switch connects what. Rows live in the catalog (`resources`, `links`, `faults`).
 *
 * Servers, copy devices and switches are defined by hand (migration 2 seeds a default
 * topology). Libraries, drives (`LIB/driveN`) and cartridges (barcodes) are read from
 * the home's library directories every time an inventory is opened.
 */

import { Catalog } from '../catalog/catalog.js';
import { guarded, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { Library } from '../tape/library.js';
import { checkVolumeName } from '../volumes/names.js';
import { confirmedHeld, jobAlive } from './alive.js';
import { describeFault, type FaultRow, faultRows } from './faults.js';
import { DEFINED_KINDS, type DefinedKind, RESOURCE_KINDS, type ResourceKind } from './kinds.js';
import { logBackupManager, recordBackupManager } from './log.js';
import { driveName, SYNCED, syncInventory } from './sync.js';
import { Fabric, type Link, STORAGE } from './topology.js';

export { DEFINED_KINDS, type DefinedKind, describeFault, driveName, RESOURCE_KINDS, type ResourceKind };
/** What moves a stream's data: a backup server or a copy device (EXTENDED COPY). */
export type MoverKind = 'server' | 'copy-device';
export type ResourceState = 'available' | 'in-use' | 'unavailable';

/** One row of the `resources` table. */
export interface ResourceRow {
  name: string;
  kind: ResourceKind;
  state: ResourceState;
  /** The job holding it (the patent's processing number); kept while it is marked unavailable. */
  jobId: number | null;
  stream: number | null;
  pid: number | null;
  reservedAt: string | null;
  detail: string | null;
}

/** A resource as listed: its row with what the libraries say now. */
export interface Resource extends ResourceRow {
  /** The library of a drive or cartridge. */
  library: string | null;
  /** What a switch connects (switches only). */
  connects?: string[];
  /** Injected faults, e.g. `fail-after 1048576`, `hang`. */
  faults: string[];
}

/** Who holds a reservation. */
export interface Holder {
  jobId: number;
  stream: number;
  pid: number;
}

const ROW_COLUMNS = `name, kind, state, job_id AS jobId, stream, pid, reserved_at AS reservedAt, detail`;

const byListing = (a: ResourceRow, b: ResourceRow): number => RESOURCE_KINDS.indexOf(a.kind) - RESOURCE_KINDS.indexOf(b.kind) || a.name.localeCompare(b.name, 'en', { numeric: true });

/** The inventory of a home, over an open catalog. */
export class Inventory {
  private stale = 0;

  private constructor(
    readonly home: Home,
    readonly catalog: Catalog,
    private readonly ownsCatalog: boolean,
  ) {}

  /**
   * Opens the inventory: registers the libraries, drives and cartridges found on disk
   * and releases reservations whose job no longer runs (`releasedStale` says how many).
   * `sync: false` skips both, for a quick look at rows already there.
   */
  static open(home: Home, opts: { sync?: boolean; catalog?: Catalog } = {}): Inventory {
    return guarded(() => {
      const catalog = opts.catalog ?? Catalog.open(home);
      const inv = new Inventory(home, catalog, !opts.catalog);
      try {
        if (opts.sync !== false) {
          syncInventory(home, catalog);
          inv.stale = inv.releaseStale();
        }
        return inv;
      } catch (e) {
        inv.close();
        throw e;
      }
    });
  }

  /** Resources released on open because their holder died. */
  get releasedStale(): number {
    return this.stale;
  }

  /** Closes the catalog if this inventory opened it. */
  close(): void {
    if (this.ownsCatalog) this.catalog.close();
  }

  private get db(): Catalog['db'] {
    return this.catalog.db;
  }

  // ---- reading ----

  /** The raw rows, by kind and name. */
  rows(): ResourceRow[] {
    return (this.db.prepare(`SELECT ${ROW_COLUMNS} FROM resources`).all() as ResourceRow[]).sort(byListing);
  }

  /** One raw row, or undefined. */
  row(name: string): ResourceRow | undefined {
    return this.db.prepare(`SELECT ${ROW_COLUMNS} FROM resources WHERE name = ?`).get(name) as ResourceRow | undefined;
  }

  /**
   * Those of `names` out of service: marked unavailable in the inventory (by hand, or
   * after a command got stuck in one) or carrying an `unavailable` fault (`faults`: their
   * fault rows, when the caller has read them already).
   */
  unavailableAmong(names: readonly string[], faults: readonly FaultRow[] = faultRows(this.catalog, names)): string[] {
    const down = new Set(faults.filter((f) => f.kind === 'unavailable').map((f) => f.target));
    return names.filter((n) => down.has(n) || this.row(n)?.state === 'unavailable');
  }

  /** Every link, by switch and endpoint. */
  links(): Link[] {
    return this.db.prepare(`SELECT switch, endpoint FROM links ORDER BY switch, endpoint`).all() as Link[];
  }

  /** The switch fabric as it is configured now. */
  fabric(): Fabric {
    const switches = new Set(
      this.rows()
        .filter((r) => r.kind === 'switch')
        .map((r) => r.name),
    );
    return new Fabric(this.links(), switches);
  }

  /**
   * Resources as listed: drives whose lock another job holds show `in-use` with its
   * pid even when no reservation names them (a single-stream backup claims drives
   * without the inventory).
   */
  list(filter: { kind?: ResourceKind } = {}): Resource[] {
    return guarded(() => this.listRows(filter));
  }

  private listRows(filter: { kind?: ResourceKind }): Resource[] {
    if (filter.kind !== undefined && !RESOURCE_KINDS.includes(filter.kind)) {
      throw new PlexusError('E_INVALID', `unknown resource kind '${String(filter.kind)}' (expected ${RESOURCE_KINDS.join(', ')})`);
    }
    const rows = this.rows().filter((r) => filter.kind === undefined || r.kind === filter.kind);
    const links = this.links();
    const faults = new Map<string, string[]>();
    for (const f of faultRows(this.catalog)) faults.set(f.target, [...(faults.get(f.target) ?? []), describeFault(f)]);
    const media = new Map(this.catalog.media().map((m) => [m.barcode, m]));
    const drives = new Map<string, { busy: boolean; loaded: string | null; pid: number | null }>();
    const busyByLibrary = new Map<string, number>();
    if (rows.some((r) => r.kind === 'drive' || r.kind === 'library')) {
      for (const lib of Library.list(this.home)) {
        const ds = lib.drives();
        busyByLibrary.set(lib.name, ds.filter((d) => d.busy).length);
        for (const d of ds) drives.set(driveName(lib.name, d.drive), d);
      }
    }
    return rows.map((r) => {
      const out: Resource = { ...r, library: null, faults: faults.get(r.name) ?? [] };
      if (r.kind === 'switch') out.connects = links.filter((l) => l.switch === r.name).map((l) => l.endpoint);
      if (r.kind === 'library') out.detail = `${r.detail ?? ''}, ${busyByLibrary.get(r.name) ?? 0} in use`;
      if (r.kind === 'drive') {
        out.library = r.name.slice(0, r.name.lastIndexOf('/'));
        const d = drives.get(r.name);
        if (d?.busy) {
          if (r.state === 'available') {
            out.state = 'in-use';
            out.pid = d.pid;
          }
          out.detail = d.loaded ? `loaded ${d.loaded}` : `claimed by process ${d.pid ?? '?'}`;
        } else out.detail = null;
      }
      if (r.kind === 'cartridge') {
        const m = media.get(r.name);
        out.library = m?.library ?? null;
        if (m) out.detail = `${m.library} slot ${m.slot}, ${m.state}, ${Math.floor((m.bytes / m.capacity) * 100)}% full`;
      }
      return out;
    });
  }

  /** One resource as listed, or E_NOENT. */
  get(name: string): Resource {
    return guarded(() => {
      const r = this.listRows({}).find((x) => x.name === name);
      if (!r) throw new PlexusError('E_NOENT', `no resource ${name} in the inventory (see \`plexus resources list\`)`);
      return r;
    });
  }

  // ---- defining ----

  /**
   * Adds a server, copy device or switch. A switch `connects` storage, movers,
   * libraries or other switches; a server or copy device `connects` the switches it is
   * cabled to. Every endpoint must exist.
   */
  add(kind: DefinedKind, name: string, opts: { connects?: string[]; detail?: string } = {}): Resource {
    return guarded(() => this.define(kind, name, opts));
  }

  private define(kind: DefinedKind, name: string, opts: { connects?: string[]; detail?: string }): Resource {
    if (!(DEFINED_KINDS as readonly string[]).includes(kind)) {
      throw new PlexusError('E_INVALID', `cannot add a ${kind}: libraries, drives and cartridges come from the tape libraries (\`plexus library create\`); add a server, copy-device or switch`);
    }
    checkResourceName(name);
    const connects = [...new Set(opts.connects ?? [])];
    this.catalog.transaction(() => {
      if (this.row(name)) throw new PlexusError('E_EXISTS', `resource ${name} already exists (${this.row(name)!.kind})`);
      for (const e of connects) {
        if (e === name) throw new PlexusError('E_INVALID', `${name} cannot connect to itself`);
        const target = e === STORAGE ? undefined : this.row(e);
        if (e !== STORAGE && !target) throw new PlexusError('E_NOENT', `${name} cannot connect to ${e}: no such resource`);
        const allowed = kind === 'switch' ? ['server', 'copy-device', 'library', 'switch'] : ['switch'];
        if (target ? !allowed.includes(target.kind) : kind !== 'switch') {
          throw new PlexusError(
            'E_INVALID',
            `a ${kind} cannot connect to ${e} (${target?.kind ?? 'the storage'}): ${kind === 'switch' ? 'a switch connects storage, servers, copy devices, libraries and switches' : 'it connects to switches'}`,
          );
        }
      }
      this.db.prepare(`INSERT INTO resources (name, kind, detail) VALUES (?, ?, ?)`).run(name, kind, opts.detail ?? null);
      const link = this.db.prepare(`INSERT OR IGNORE INTO links (switch, endpoint) VALUES (?, ?)`);
      // A switch's links start at the switch; a server's or copy device's at its switches.
      for (const e of connects) link.run(kind === 'switch' ? name : e, kind === 'switch' ? e : name);
      recordBackupManager(this.home, `${kind} ${name} added${connects.length ? `, connects ${connects.join(' ')}` : ''}`);
    });
    return this.get(name);
  }

  /** Removes a server, copy device or switch and its links. E_STATE while a job holds it. */
  remove(name: string): { links: number } {
    return guarded(() => this.undefine(name));
  }

  private undefine(name: string): { links: number } {
    return this.catalog.transaction(() => {
      const r = this.row(name);
      if (!r) throw new PlexusError('E_NOENT', `no resource ${name} in the inventory`);
      if (SYNCED.has(r.kind)) {
        throw new PlexusError('E_INVALID', `${r.kind} ${name} comes from a tape library: remove the library with \`plexus library rm\`, or mark it unavailable`);
      }
      if (r.jobId !== null) throw new PlexusError('E_STATE', `${r.kind} ${name} is held by ${holderText(r)}: remove it after the job releases it`);
      const links = this.db.prepare(`DELETE FROM links WHERE switch = ? OR endpoint = ?`).run(name, name).changes;
      this.db.prepare(`DELETE FROM resources WHERE name = ?`).run(name);
      recordBackupManager(this.home, `${r.kind} ${name} removed with ${links} link${links === 1 ? '' : 's'}`);
      return { links };
    });
  }

  /**
   * Marks a resource available or unavailable. Marking one a job holds unavailable is
   * recorded at once (the job sees it on its next check, and it stays unavailable after
   * the release); marking it available again gives it back to its holder. Only a job
   * securing a resource puts it in use. The log line is written before the change
   * commits: a log that cannot be written leaves the state as it was.
   */
  setState(name: string, state: ResourceState): Resource {
    return guarded(() => this.changeState(name, state, true));
  }

  /**
   * Sets a state; with `strict`, the log line is part of the change (see setState),
   * otherwise it is best effort (markUnavailable, on a job's failure path).
   */
  changeState(name: string, state: ResourceState, strict: boolean): Resource {
    if (state !== 'available' && state !== 'unavailable') {
      throw new PlexusError('E_INVALID', `state must be available or unavailable, not '${String(state)}': only a job securing a resource puts it in use`);
    }
    const before = this.catalog.transaction(() => {
      const r = this.row(name);
      if (!r) throw new PlexusError('E_NOENT', `no resource ${name} in the inventory (see \`plexus resources list\`)`);
      if (state === 'available' && r.state === 'in-use') {
        throw new PlexusError('E_STATE', `${r.kind} ${name} is in use by ${holderText(r)}: it becomes available when the job releases it`);
      }
      if (state === 'unavailable') {
        this.db.prepare(`UPDATE resources SET state = 'unavailable' WHERE name = ?`).run(name);
      } else if (r.state === 'unavailable') {
        // Given back to its holder only while the holder's job still runs (holds its lock).
        const held = r.jobId !== null && this.jobRuns(r.jobId);
        if (held) this.db.prepare(`UPDATE resources SET state = 'in-use' WHERE name = ?`).run(name);
        else this.db.prepare(`UPDATE resources SET state = 'available', job_id = NULL, stream = NULL, pid = NULL, reserved_at = NULL WHERE name = ?`).run(name);
      }
      const line = `${r.kind} ${name} set ${state}${r.jobId !== null ? ` while held by ${holderText(r)}` : ''}`;
      if (r.state !== state && strict) recordBackupManager(this.home, line);
      return { r, line };
    });
    if (before.r.state !== state && !strict) logBackupManager(this.home, before.line);
    return this.get(name);
  }

  // ---- reservations ----

  /**
   * Puts resources in use for a holder. Call inside a catalog transaction: E_STATE if
   * any is not available (or not of the kind expected), and the caller's transaction
   * rolls back.
   */
  reserve(items: ReadonlyArray<{ name: string; kind: ResourceKind }>, holder: Holder): void {
    const now = new Date().toISOString();
    const stmt = this.db.prepare(`UPDATE resources SET state = 'in-use', job_id = ?, stream = ?, pid = ?, reserved_at = ? WHERE name = ? AND kind = ? AND state = 'available'`);
    for (const it of items) {
      if (stmt.run(holder.jobId, holder.stream, holder.pid, now, it.name, it.kind).changes !== 1) {
        throw new PlexusError('E_STATE', `${it.kind} ${it.name} is not available any more`);
      }
    }
  }

  /**
   * Releases what `holder` holds among `names`: in-use rows become available, rows
   * marked unavailable meanwhile stay so. Rows another holder took since are left
   * alone. Returns how many rows it released.
   */
  release(names: readonly string[], holder: Holder): number {
    const stmt = this.db.prepare(
      `UPDATE resources SET state = CASE state WHEN 'in-use' THEN 'available' ELSE state END,
         job_id = NULL, stream = NULL, pid = NULL, reserved_at = NULL
       WHERE name = ? AND job_id = ? AND stream = ? AND pid = ?`,
    );
    return this.catalog.transaction(() => names.reduce((n, name) => n + stmt.run(name, holder.jobId, holder.stream, holder.pid).changes, 0));
  }

  /** Whether job `id` runs: some live process holds its kernel lock (src/catalog/liveness.ts; ./alive.ts). */
  private jobRuns(id: number): boolean {
    return jobAlive(this.catalog.file, id);
  }

  /**
   * Releases reservations whose holder is gone: its job's kernel lock is free (the job
   * ended, or its process died, however it died), or a drive it reserved is no longer
   * locked. The pid a row records plays no part: it may have been reused. Each release
   * is logged before it commits. Returns how many rows it freed.
   */
  releaseStale(): number {
    return guarded(() => this.releaseDead());
  }

  private releaseDead(): number {
    const held = this.db.prepare(`SELECT ${ROW_COLUMNS} FROM resources WHERE job_id IS NOT NULL`).all() as ResourceRow[];
    if (held.length === 0) return 0;
    const groups = new Map<string, ResourceRow[]>();
    for (const r of held) {
      const k = `${r.jobId}/${r.stream}/${r.pid}`;
      groups.set(k, [...(groups.get(k) ?? []), r]);
    }
    const libs = new Map(Library.list(this.home).map((l) => [l.name, l]));
    const runs = new Map<number, boolean>();
    const jobRuns = (id: number): boolean => {
      if (!runs.has(id)) runs.set(id, this.jobRuns(id));
      return runs.get(id)!;
    };
    let freed = 0;
    for (const rows of groups.values()) {
      const h = rows[0]!;
      const ended = h.jobId === null || !jobRuns(h.jobId);
      const unlocked = rows.some((r) => r.kind === 'drive' && !driveLocked(libs, r.name));
      if (!ended && !unlocked) continue;
      // Recovery is not itself held hostage by the log: a dead job's reservations are
      // released even while HOME/logs cannot be written (its line is then best effort),
      // or one broken log directory would keep every stream it held out of service.
      freed += this.catalog.transaction(() => {
        const n = rows.reduce(
          (a, r) =>
            a +
            this.db
              .prepare(
                `UPDATE resources SET state = CASE state WHEN 'in-use' THEN 'available' ELSE state END, job_id = NULL, stream = NULL, pid = NULL, reserved_at = NULL
                 WHERE name = ? AND job_id IS ? AND stream IS ? AND pid IS ?`,
              )
              .run(r.name, r.jobId, r.stream, r.pid).changes,
          0,
        );
        logBackupManager(
          this.home,
          `job ${h.jobId}: released ${n} resource${n === 1 ? '' : 's'} of stream ${h.stream} left by process ${h.pid} (${ended ? 'its job is no longer running' : 'its drive is no longer locked'}): ${rows.map((r) => r.name).join(', ')}`,
        );
        return n;
      });
    }
    return freed;
  }
}

/** Names of servers, copy devices and switches: as volume names; `storage` is reserved. */
function checkResourceName(name: string): void {
  if (name === STORAGE) throw new PlexusError('E_INVALID', `'${STORAGE}' is reserved: it stands for the home's volumes in links`);
  try {
    checkVolumeName(name);
  } catch {
    throw new PlexusError('E_INVALID', `invalid resource name '${name}': use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
}

/** Whether the lock of drive `name` (`LIB/driveN`) is held by a live process (a "no" confirmed: ./alive.ts). */
function driveLocked(libs: Map<string, Library>, name: string): boolean {
  const slash = name.lastIndexOf('/');
  const lib = libs.get(name.slice(0, slash));
  const n = Number(name.slice(slash + '/drive'.length));
  if (!lib || !Number.isInteger(n)) return false;
  return confirmedHeld(() => lib.drives()[n]?.busy ?? false);
}

/**
 * Takes resources a job found stuck (a copy device whose command never returned from a
 * system call, its drive, the cartridge its worker still holds) out of service, so no
 * later job secures them: they stay `unavailable` until an operator marks them
 * available (`plexus resources set NAME --state available`). Names unknown to the
 * inventory are skipped; returns those marked.
 */
export function markUnavailable(home: Home, names: readonly string[], why: string): string[] {
  return guarded(() => {
    const inv = Inventory.open(home, { sync: false });
    try {
      const marked = names.filter((n) => inv.row(n) !== undefined);
      // On a job's failure path: the log is best effort, the job's own error matters more.
      for (const n of marked) inv.changeState(n, 'unavailable', false);
      if (marked.length > 0) logBackupManager(home, `${marked.join(', ')} marked unavailable: ${why}`);
      return marked;
    } finally {
      inv.close();
    }
  });
}

/** "job 3 stream 0 (process 1234)". */
export function holderText(r: Pick<ResourceRow, 'jobId' | 'stream' | 'pid'>): string {
  return `job ${r.jobId} stream ${r.stream} (process ${r.pid})`;
}
