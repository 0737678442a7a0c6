/**
 * Securing redundant backup streams (JP 2001-095789, Fig. 7/8 steps 1020-1070 and
 * Fig. 11 step 3010): for each stream a mover (backup server or copy device), a
 * library with a free drive, a cartridge with room, and a path of switches from the
 * storage to the mover and on to the library. Switches are exclusive per stream, as in
 * the patent (each path is zoned for its stream), so two streams never share one. If
 * fewer than the streams asked for can be secured, the attempt holds nothing: everything
 * taken is released, and `secureStreams` logs the failure (steps 1180/1190). A backup
 * job first waits its turn for streams other jobs hold (./stream-wait.ts).
 *
 * Drives and cartridges are claimed with their kernel file locks first (a killed job's
 * claims vanish with it); the servers, copy devices and switches are then chosen and
 * everything is reserved in one catalog transaction, so two jobs securing at once
 * never pick the same mover or switch.
 */
import type { Catalog } from '../catalog/catalog.js';
import { guarded, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { type DriveClaim, Library } from '../tape/library.js';
import { type EffectiveFault, effectiveFault, faultRows } from './faults.js';
import { driveName, type Holder, holderText, Inventory, type MoverKind, type ResourceKind, type ResourceRow } from './inventory.js';
import { logBackupManager, recordBackupManager } from './log.js';
import type { Fabric } from './topology.js';

/** The lock on a cartridge (`Library.tryClaimCartridge`). */
export type CartridgeLock = NonNullable<ReturnType<Library['tryClaimCartridge']>>;

/** Options of `secureStreams`. */
export interface SecureOptions {
  /** The job (the catalog's job number) the streams are for. */
  jobId: number;
  /** How many independent streams (default 2, at most 16). */
  count?: number;
  /** What moves the data (default `server`). */
  mover?: MoverKind;
  /** Only this library (default: any, spreading streams over libraries). */
  library?: string;
}

/** What a running stream finds when it checks its components. */
export interface StreamCheck {
  /** Components marked unavailable since (by hand or by an `unavailable` fault). */
  unavailable: string[];
  /** Components this stream no longer holds (released behind its back). */
  lost: string[];
  /** The combined fault of its components. */
  fault: EffectiveFault;
}

/** One secured stream: everything it holds, and how to let go of it. */
export interface SecuredStream {
  readonly jobId: number;
  /** 0, 1, ...: the patent's stream number. */
  readonly stream: number;
  readonly mover: { readonly name: string; readonly kind: MoverKind };
  readonly library: Library;
  /** The claimed drive (its kernel lock), and its inventory name `LIB/driveN`. */
  readonly drive: DriveClaim;
  readonly driveName: string;
  /** The claimed cartridge: written by this stream only. */
  readonly cartridge: { readonly barcode: string; readonly lock: CartridgeLock };
  /** Switches from the storage to the mover and on to the library, in order. */
  readonly path: readonly string[];
  /** Every inventory name the stream holds: mover, drive, cartridge, switches. */
  readonly resources: readonly string[];
  readonly released: boolean;
  /** Reads the inventory: what was marked unavailable or faulted since. */
  check(): StreamCheck;
  /** Releases the reservations and the locks; idempotent. Unload the cartridge first. */
  release(): void;
}

/** What the search knows about the inventory at one moment. */
interface Snapshot {
  rows: Map<string, ResourceRow>;
  /** Resources with an `unavailable` fault. */
  down: Set<string>;
  fabric: Fabric;
}

/** A drive and a cartridge claimed for one stream. */
interface Slot {
  lib: Library;
  claim: DriveClaim;
  drive: string;
  barcode: string;
  lock: CartridgeLock;
}

/** A mover and switch path chosen for one slot. */
interface Plan {
  mover: string;
  path: string[];
}

const LABEL: Record<MoverKind, string> = { server: 'server', 'copy-device': 'copy device' };
const plural = (n: number, w: string): string => `${n} ${w}${n === 1 ? '' : 's'}`;

function snapshot(inv: Inventory): Snapshot {
  return {
    rows: new Map(inv.rows().map((r) => [r.name, r])),
    down: new Set(
      faultRows(inv.catalog)
        .filter((f) => f.kind === 'unavailable')
        .map((f) => f.target),
    ),
    fabric: inv.fabric(),
  };
}

function usable(s: Snapshot, name: string, kind: ResourceKind): boolean {
  const r = s.rows.get(name);
  return r !== undefined && r.kind === kind && r.state === 'available' && !s.down.has(name);
}

/** Why a resource cannot be used: "unavailable", "in use by job 3 stream 0 (process 9)". */
function why(s: Snapshot, name: string): string {
  const r = s.rows.get(name);
  if (!r) return 'not in the inventory';
  if (r.state === 'unavailable') return 'unavailable';
  if (s.down.has(name)) return 'unavailable (fault)';
  if (r.state === 'in-use') return `in use by ${holderText(r)}`;
  return 'available';
}

/** Claims a drive of `lib` the inventory lets us use, without waiting. */
async function claimDrive(s: Snapshot, lib: Library): Promise<{ claim: DriveClaim; drive: string } | string> {
  // A free drive marked unavailable is held while looking further (claimDrive takes
  // the lowest free one), then let go.
  const rejected: DriveClaim[] = [];
  try {
    for (;;) {
      let claim: DriveClaim;
      try {
        claim = await lib.claimDrive({ timeoutMs: 0 });
      } catch (e) {
        if ((e as PlexusError).code === 'E_TIMEOUT') break;
        throw e;
      }
      const name = driveName(lib.name, claim.drive);
      if (usable(s, name, 'drive')) return { claim, drive: name };
      rejected.push(claim);
    }
  } finally {
    for (const r of rejected) r.release();
  }
  const n = lib.config.drives;
  const off = rejected.length;
  return `no free drive in library ${lib.name} (${plural(n, 'drive')}, ${n - off} in use${off ? `, ${off} unavailable` : ''})`;
}

/** Claims a cartridge with room: partly filled ones first, then scratch, by slot. */
function claimCartridge(inv: Inventory, s: Snapshot, lib: Library): { barcode: string; lock: CartridgeLock } | string {
  const media = inv.catalog.media(lib.name);
  const room = media.filter((m) => m.state === 'filling' || m.state === 'scratch');
  room.sort((a, b) => (a.state === b.state ? a.slot - b.slot : a.state === 'filling' ? -1 : 1));
  let busy = 0;
  let off = 0;
  for (const m of room) {
    if (!usable(s, m.barcode, 'cartridge')) {
      if (s.rows.get(m.barcode)?.state === 'in-use') busy++;
      else off++;
      continue;
    }
    if (!lib.present(m.barcode)) {
      off++;
      continue;
    }
    const lock = lib.tryClaimCartridge(m.barcode);
    if (lock) return { barcode: m.barcode, lock };
    busy++;
  }
  const parts = [`${media.length - room.length} full or missing`, busy ? `${busy} in use` : '', off ? `${off} unavailable` : ''].filter(Boolean);
  return `no cartridge with room in library ${lib.name} (${plural(media.length, 'cartridge')}: ${parts.join(', ')})`;
}

/** Claims a drive and a cartridge for the next stream, preferring libraries no stream of this job uses yet. */
async function claimSlot(inv: Inventory, s: Snapshot, libs: readonly Library[], taken: readonly Slot[]): Promise<Slot | string> {
  const uses = (l: Library): number => taken.filter((t) => t.lib.name === l.name).length;
  const order = [...libs].sort((a, b) => uses(a) - uses(b) || a.name.localeCompare(b.name));
  const reasons: string[] = [];
  for (const lib of order) {
    const row = s.rows.get(lib.name);
    if (row?.kind !== 'library' || row.state === 'unavailable' || s.down.has(lib.name)) {
      reasons.push(`library ${lib.name} is ${row?.kind === 'library' ? why(s, lib.name) : 'not in the inventory'}`);
      continue;
    }
    const drive = await claimDrive(s, lib);
    if (typeof drive === 'string') {
      reasons.push(drive);
      continue;
    }
    const cart = claimCartridge(inv, s, lib);
    if (typeof cart === 'string') {
      drive.claim.release();
      reasons.push(cart);
      continue;
    }
    return { lib, ...drive, ...cart };
  }
  return reasons.join('; ') || 'there is no tape library in the home';
}

/**
 * Chooses a mover and a path of switches for each slot, no two streams sharing either.
 * Backtracks over the movers (a greedy choice for stream 0 may leave stream 1 without
 * a path); each path is a cheapest one. Returns as many plans as it could make and,
 * if short, why the next stream failed.
 */
function planStreams(s: Snapshot, slots: ReadonlyArray<Pick<Slot, 'lib' | 'drive' | 'barcode'>>, kind: MoverKind): { plans: Plan[]; reason: string } {
  let usableSlots = slots.length;
  let reason = '';
  // Someone may have marked a claimed drive or cartridge unavailable since it was claimed.
  const lost = slots.findIndex((t) => !usable(s, t.drive, 'drive') || !usable(s, t.barcode, 'cartridge'));
  if (lost >= 0) {
    const t = slots[lost]!;
    const [what, name] = usable(s, t.drive, 'drive') ? ['cartridge', t.barcode] : ['drive', t.drive];
    usableSlots = lost;
    reason = `${what} ${name} became ${why(s, name)} while the streams were being secured`;
  }
  const movers = [...s.rows.values()].filter((r) => r.kind === kind).map((r) => r.name);
  const free = movers.filter((m) => usable(s, m, kind));
  const current: Plan[] = [];
  const switchOwner = new Map<string, number>();
  let best: Plan[] = [];
  let bestDepth = -1;

  const explain = (i: number, lib: string): string => {
    const mine = (n: string): number => current.findIndex((p) => p.mover === n || p.path.includes(n));
    const status = (n: string): string => (mine(n) >= 0 ? `${n} taken by stream ${mine(n)}` : `${n} ${why(s, n)}`);
    const left = free.filter((m) => mine(m) < 0);
    if (left.length === 0) {
      return `no available ${LABEL[kind]} (${plural(movers.length, LABEL[kind])}${movers.length ? `: ${movers.map(status).join(', ')}` : ''})`;
    }
    const switches = [...s.rows.values()].filter((r) => r.kind === 'switch').map((r) => r.name);
    const blocked = switches.filter((n) => mine(n) >= 0 || !usable(s, n, 'switch')).map(status);
    const detail = switches.length === 0 ? 'there are no switches' : blocked.length ? `switches: ${blocked.join(', ')}` : 'no links connect them';
    return `no path of available switches from storage through ${left.join(' or ')} to library ${lib} (${detail}) for stream ${i}`;
  };

  const place = (i: number): boolean => {
    if (i === usableSlots) return true;
    for (const m of free) {
      if (current.some((p) => p.mover === m)) continue;
      const path = s.fabric.streamPath(m, slots[i]!.lib.name, (sw) => usable(s, sw, 'switch') && !switchOwner.has(sw));
      if (!path) continue;
      current.push({ mover: m, path });
      for (const sw of path) switchOwner.set(sw, i);
      if (place(i + 1)) return true;
      current.pop();
      for (const sw of path) switchOwner.delete(sw);
    }
    // The deepest failure explains the shortage best.
    if (i > bestDepth) {
      bestDepth = i;
      best = [...current];
      reason = explain(i, slots[i]!.lib.name);
    }
    return false;
  };
  if (place(0)) return { plans: [...current], reason };
  return { plans: best, reason };
}

/** A secured stream of this process. */
class Stream implements SecuredStream {
  private done = false;

  constructor(
    readonly home: Home,
    readonly jobId: number,
    readonly stream: number,
    readonly pid: number,
    readonly mover: { name: string; kind: MoverKind },
    readonly library: Library,
    readonly drive: DriveClaim,
    readonly driveName: string,
    readonly cartridge: { barcode: string; lock: CartridgeLock },
    readonly path: readonly string[],
  ) {}

  get resources(): string[] {
    return [this.mover.name, this.driveName, this.cartridge.barcode, ...this.path];
  }

  get released(): boolean {
    return this.done;
  }

  get holder(): Holder {
    return { jobId: this.jobId, stream: this.stream, pid: this.pid };
  }

  check(): StreamCheck {
    return guarded(() => this.look());
  }

  private look(): StreamCheck {
    const inv = Inventory.open(this.home, { sync: false });
    try {
      const faults = faultRows(inv.catalog, this.resources);
      const fault = effectiveFault(faults);
      const rows = this.resources.map((n) => [n, inv.row(n)] as const);
      return {
        unavailable: inv.unavailableAmong(this.resources, faults),
        lost: rows.filter(([, r]) => !r || r.jobId !== this.jobId || r.stream !== this.stream || r.pid !== this.pid).map(([n]) => n),
        fault,
      };
    } finally {
      inv.close();
    }
  }

  release(): void {
    releaseAll([this]);
  }

  /** Marks the stream released; false if it already was. */
  take(): boolean {
    if (this.done) return false;
    this.done = true;
    return true;
  }
}

/** Frees a slot's locks; the first error wins but every lock is tried. */
function freeLocks(items: ReadonlyArray<{ claim: DriveClaim; lock: CartridgeLock }>): void {
  let first: unknown;
  for (const it of items) {
    for (const f of [() => it.lock.release(), () => it.claim.release()]) {
      try {
        f();
      } catch (e) {
        first ??= e;
      }
    }
  }
  if (first !== undefined) throw first;
}

/**
 * Releases streams: their inventory rows go back to available (rows marked unavailable
 * meanwhile stay so), then their drive and cartridge locks are freed. Idempotent.
 */
export function releaseAll(streams: readonly SecuredStream[]): void {
  guarded(() => releaseStreams(streams));
}

function releaseStreams(streams: readonly SecuredStream[]): void {
  const mine = streams.filter((s): s is Stream => s instanceof Stream).filter((s) => s.take());
  const byHome = new Map<string, Stream[]>();
  for (const s of mine) byHome.set(s.home.dir, [...(byHome.get(s.home.dir) ?? []), s]);
  for (const group of byHome.values()) {
    const home = group[0]!.home;
    try {
      // Rows first, locks after: a reserved drive is always locked, which is what lets
      // the next open tell a stale reservation (lock gone) from a live one.
      const inv = Inventory.open(home, { sync: false });
      try {
        for (const s of group) inv.release(s.resources, s.holder);
      } finally {
        inv.close();
      }
    } finally {
      freeLocks(group.map((s) => ({ claim: s.drive, lock: s.cartridge.lock })));
      const jobs = [...new Set(group.map((s) => s.jobId))];
      for (const j of jobs) {
        logBackupManager(
          home,
          `job ${j}: released stream${group.length === 1 ? '' : 's'} ${group
            .filter((s) => s.jobId === j)
            .map((s) => s.stream)
            .join(', ')}`,
        );
      }
    }
  }
}

/** What one attempt at securing streams came to: the streams, or why not. */
export type Attempt = { streams: SecuredStream[]; shortage?: undefined } | { streams?: undefined; shortage: string };

/** Hooks of one attempt. */
export interface AttemptHooks {
  /** Called inside the reservation's transaction, once everything is reserved: a
   * change made here commits with the reservation or not at all (the wait queue
   * drops the job's entry here). */
  reserved?: (catalog: Catalog) => void;
  /** An open catalog of the home to use (a waiting job keeps one), instead of opening one. */
  catalog?: Catalog;
}

/** Checks SecureOptions; returns them with their defaults. */
export function secureRequest(opts: SecureOptions): { jobId: number; count: number; kind: MoverKind } {
  const { jobId } = opts;
  const count = opts.count ?? 2;
  const kind = opts.mover ?? 'server';
  if (!Number.isSafeInteger(jobId) || jobId < 0) throw new PlexusError('E_INVALID', `job number must be a whole number, not ${String(jobId)}`);
  if (!Number.isInteger(count) || count < 1 || count > 16) throw new PlexusError('E_INVALID', `stream count must be a whole number from 1 to 16, not ${String(count)}`);
  if (kind !== 'server' && kind !== 'copy-device') throw new PlexusError('E_INVALID', `mover must be server or copy-device, not '${String(kind)}'`);
  return { jobId, count, kind };
}

/** "2 server streams", "1 copy device stream". */
export function streamsText(count: number, kind: MoverKind): string {
  return plural(count, `${LABEL[kind]} stream`);
}

/**
 * Logs a job's failure to secure its streams (steps 1180/1190) and returns the
 * E_RESOURCES error to throw. Nothing is held by then: an attempt frees what it took.
 */
export function securingFailed(home: Home, opts: SecureOptions, message: string): PlexusError {
  const { jobId, count, kind } = secureRequest(opts);
  logBackupManager(home, `job ${jobId}: cannot secure ${streamsText(count, kind)}: ${message}; released everything taken`);
  return new PlexusError('E_RESOURCES', message);
}

/**
 * Secures `count` independent streams for a job: per stream a mover of the kind asked,
 * a free drive and a cartridge with room in a library (never waiting), and switches
 * from the storage to the mover and on to the library that no other stream uses.
 * Everything is reserved in one transaction, for a job this process runs (it holds the
 * job's lock, from `Catalog.startJob`; E_STATE otherwise): the reservations live
 * exactly as long as that lock, so a job that dies, however it dies, leaves nothing
 * held at the next open. If fewer than `count` can be secured, everything taken is
 * released, the failure is logged to HOME/logs/backup-manager.log, and E_RESOURCES
 * names what was missing. To wait for streams other jobs hold, see `waitForStreams`
 * (./stream-wait.ts).
 */
export function secureStreams(home: Home, opts: SecureOptions): Promise<SecuredStream[]> {
  return guarded(async () => {
    const r = await attempt(home, opts, {});
    if (r.streams) return r.streams;
    throw securingFailed(home, opts, r.shortage);
  });
}

/**
 * One attempt at securing the streams, all or nothing: either every stream is reserved
 * or nothing is held when it returns (the drive and cartridge locks it took are freed)
 * and `shortage` says what was missing. Logs only the reservations it made.
 */
export function attemptStreams(home: Home, opts: SecureOptions, hooks: AttemptHooks = {}): Promise<Attempt> {
  return guarded(() => attempt(home, opts, hooks));
}

async function attempt(home: Home, opts: SecureOptions, hooks: AttemptHooks): Promise<Attempt> {
  const { jobId, count, kind } = secureRequest(opts);
  const libs = opts.library !== undefined ? [Library.open(home, opts.library)] : Library.list(home);
  const inv = Inventory.open(home, { catalog: hooks.catalog });
  const slots: Slot[] = [];
  let handedOver = false;
  try {
    if (!inv.catalog.runsJob(jobId)) {
      throw new PlexusError('E_STATE', `job ${jobId} is not running in this process: streams are secured for a job started with Catalog.startJob (its lock keeps the reservations alive)`);
    }
    const before = snapshot(inv);
    let shortage = '';
    for (let i = 0; i < count; i++) {
      const slot = await claimSlot(inv, before, libs, slots);
      if (typeof slot === 'string') {
        shortage = slot;
        break;
      }
      slots.push(slot);
    }
    const pid = process.pid;
    // Choosing and reserving in one IMMEDIATE transaction: no other job can take a
    // mover or switch between the choice and the reservation.
    const { plans, reason } = inv.catalog.transaction(() => {
      const now = snapshot(inv);
      const r = planStreams(now, slots, kind);
      if (r.plans.length === count) {
        r.plans.forEach((p, i) => {
          const t = slots[i]!;
          inv.reserve([{ name: p.mover, kind }, { name: t.drive, kind: 'drive' }, { name: t.barcode, kind: 'cartridge' }, ...p.path.map((name) => ({ name, kind: 'switch' as const }))], {
            jobId,
            stream: i,
            pid,
          });
          // Logged before the reservation commits: a log that cannot be written secures nothing.
          recordBackupManager(home, `job ${jobId}: secured stream ${i}: ${LABEL[kind]} ${p.mover}, drive ${t.drive}, cartridge ${t.barcode}, switches ${p.path.join(' ')}`);
        });
        hooks.reserved?.(inv.catalog);
      }
      return r;
    });
    if (plans.length < count) return { shortage: `secured ${plans.length} of ${plural(count, 'stream')}: ${plans.length < slots.length ? reason : shortage}` };
    const streams = plans.map((p, i) => {
      const t = slots[i]!;
      return new Stream(home, jobId, i, pid, { name: p.mover, kind }, t.lib, t.claim, t.drive, { barcode: t.barcode, lock: t.lock }, p.path);
    });
    handedOver = true;
    return { streams };
  } finally {
    if (!handedOver) freeLocks(slots);
    inv.close();
  }
}

/**
 * Why `opts` could not be secured even if every job let go of what it holds: too few
 * drives, cartridges with room, movers or switch paths in service (not unavailable,
 * no `unavailable` fault). Undefined when it could: what is missing now is only held.
 * Reads the inventory (through `catalog` if given) and claims nothing.
 */
export function unservable(home: Home, opts: SecureOptions, catalog?: Catalog): string | undefined {
  return guarded(() => {
    const { count, kind } = secureRequest(opts);
    const libs = opts.library !== undefined ? [Library.open(home, opts.library)] : Library.list(home);
    const inv = Inventory.open(home, { catalog });
    try {
      const s = everythingFree(snapshot(inv));
      // The drives and cartridges each library could give, with nothing claimed.
      const room = libs.flatMap((lib) => {
        const row = s.rows.get(lib.name);
        if (row?.kind !== 'library' || !usable(s, lib.name, 'library')) return [];
        const drives = Array.from({ length: lib.config.drives }, (_, d) => driveName(lib.name, d)).filter((n) => usable(s, n, 'drive'));
        const carts = inv.catalog
          .media(lib.name)
          .filter((m) => (m.state === 'filling' || m.state === 'scratch') && usable(s, m.barcode, 'cartridge') && lib.present(m.barcode))
          .map((m) => m.barcode);
        return [{ lib, drives, carts }];
      });
      // Spread as claimSlot spreads them: the library fewest of the job's streams use.
      const slots: Array<Pick<Slot, 'lib' | 'drive' | 'barcode'>> = [];
      for (let i = 0; i < count; i++) {
        const uses = (r: (typeof room)[number]): number => slots.filter((t) => t.lib.name === r.lib.name).length;
        const open = room.filter((r) => uses(r) < Math.min(r.drives.length, r.carts.length));
        open.sort((a, b) => uses(a) - uses(b) || a.lib.name.localeCompare(b.lib.name));
        const r = open[0];
        if (!r) {
          const what = room.map((x) => `${x.lib.name}: ${plural(x.drives.length, 'drive')}, ${plural(x.carts.length, 'cartridge')} with room`).join('; ');
          return `only ${i} of ${plural(count, 'stream')} even with every drive and cartridge free (${what || 'no library in service'})`;
        }
        slots.push({ lib: r.lib, drive: r.drives[uses(r)]!, barcode: r.carts[uses(r)]! });
      }
      const { plans, reason } = planStreams(s, slots, kind);
      return plans.length < count ? `only ${plans.length} of ${plural(count, 'stream')} even with every mover and switch free: ${reason}` : undefined;
    } finally {
      inv.close();
    }
  });
}

/** The inventory as it would be if every job released what it holds. */
function everythingFree(s: Snapshot): Snapshot {
  const rows = new Map([...s.rows].map(([n, r]) => [n, r.state === 'in-use' ? { ...r, state: 'available' as const, jobId: null, stream: null, pid: null } : r]));
  return { ...s, rows };
}
