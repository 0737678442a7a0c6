/**
 * All pairs of one primary, opened together by one process: the engine that owns the
 * data path while it is open. One process at a time (a lock file the kernel releases
 * when the owner dies), so a crashed owner is recognised by the next one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { awaitNative, callNative, PlexusError } from '../errors.js';
import { type NativeMirror, type NativePlex, native } from '../native/binding.js';
import type { ProgressCallback } from '../progress.js';
import { withPolledProgress } from '../progress.js';
import type { VolumeStore } from '../volumes/store.js';
import type { Volume } from '../volumes/volume.js';
import type { PairRecord, PairRecords } from './record.js';
import { engineMode, isDuplexing } from './states.js';

type OwnerLock = InstanceType<typeof native.NativeOwnerLock>;

/** One open pair of the set. */
export interface OpenPair {
  record: PairRecord;
  secondary: Volume;
  mirror: NativeMirror;
}

/** What a resync or fill did. */
export interface MirrorCopyReport {
  bytesCopied: number;
  elapsedMs: number;
  chunks: number;
  threads: number;
}

/** A pair that went to PSUE: which, and why (the error recorded as its `lastError`). */
export interface PairSuspension {
  primary: string;
  secondary: string;
  reason: string;
  /** The bitmaps cannot be trusted: the resync will copy everything, not the difference. */
  full: boolean;
}

/** The pairs of one primary, open for I/O and operations. */
export class PlexSet {
  private closed = false;
  /** Long operations (copies, resyncs, fills) running on this set now. */
  private running = 0;
  /**
   * Sets kept open between operations by a long-lived owner (the site agent,
   * src/agent/): while set, `open` hands out the kept set of a primary and `close` leaves
   * it open; `closeKept` closes them for real. Undefined in a CLI process.
   */
  private static keeper: Map<string, PlexSet> | undefined;
  /** Told when a kept set gains or loses pairs (the agent re-points its exports). */
  static onKeptChange?: (primary: string) => void;
  /** Told of every pair this set suspends from now on (a refused duplexed write). */
  onSuspend?: (s: PairSuspension) => void;

  /** The primary's write path: its mirrors and checkpoints (shared with NBD exports in the agent). */
  readonly plex: NativePlex;

  private constructor(
    readonly primary: Volume,
    readonly pairs: Map<string, OpenPair>,
    private readonly lock: OwnerLock,
    private readonly records: PairRecords,
    /** Pairs whose secondary could not be opened: suspended, their bitmaps still
     * recording the primary's writes for a differential resync once it is back. */
    private readonly absent: Map<string, { record: PairRecord; mirror: NativeMirror }> = new Map(),
    /** Pairs this open suspended (secondary unavailable, owner died): not in PSUE before. */
    readonly suspendedAtOpen: readonly PairSuspension[] = [],
  ) {
    this.plex = PlexSet.plexFor?.(primary) ?? callNative(() => native.NativePlex.create(primary.handle));
    this.syncPlex();
    // A primary that keeps checkpoints records every write in them, whoever owns it.
    if (!this.plex.hasCheckpoints && fs.existsSync(records.checkpointDir(primary.name))) this.openCheckpoints();
  }

  /** Opens (or starts) the primary's checkpoint chain, at its pairs' granularity. */
  private openCheckpoints(): void {
    const granularity = this.records.ofPrimary(this.primary.name)[0]?.granularity ?? 64 * 1024;
    callNative(() => this.plex.openCheckpoints(this.records.checkpointDir(this.primary.name), granularity));
  }

  /**
   * Where a long-lived owner keeps the write path of each volume (the agent's NBD
   * exports): a set of that primary then writes through the same path as its clients.
   */
  static plexFor?: (primary: Volume) => NativePlex;

  /** Points the write path at the set's mirrors, after pairs came or went. */
  private syncPlex(): void {
    callNative(() => this.plex.setMirrors(this.mirrors()));
  }

  /**
   * Starts a new dirty-bitmap generation on the primary (the first call starts
   * generation 1), or releases a frozen one. Every write from now on is recorded in the
   * new generation; one in flight lands wholly in the old or the new.
   */
  checkpoint(release?: number): { generation: number; generations: Array<{ number: number; frozen: boolean; dirtyBytes: number }> } {
    let generation: number;
    if (release !== undefined) {
      callNative(() => this.plex.releaseCheckpoint(release));
      generation = release;
    } else if (!this.plex.hasCheckpoints) {
      // The chain starts with generation 1 recording from now on.
      this.openCheckpoints();
      generation = callNative(() => this.plex.generations()).at(-1)!.number;
    } else generation = callNative(() => this.plex.checkpoint());
    return { generation, generations: callNative(() => this.plex.generations()) };
  }

  /**
   * Opens every pair of `primaryName`. E_BUSY if another live process has them open.
   * Pairs whose secondary cannot be opened are suspended (PSUE) rather than blocking
   * the primary; they will need a full resync.
   */
  static open(store: VolumeStore, records: PairRecords, primaryName: string): PlexSet {
    const kept = PlexSet.keeper?.get(primaryName);
    if (kept) return kept;
    return PlexSet.keep(PlexSet.openNew(store, records, primaryName));
  }

  /** Keeps pair sets open from now on (the site agent does, for its whole life). */
  static keepOpen(): void {
    PlexSet.keeper ??= new Map();
  }

  /** The kept set of `primary`, if this process keeps one open. */
  static kept(primary: string): PlexSet | undefined {
    return PlexSet.keeper?.get(primary);
  }

  /** Every kept set. */
  static allKept(): PlexSet[] {
    return [...(PlexSet.keeper?.values() ?? [])];
  }

  /** Closes every kept set cleanly and stops keeping them; the first error is thrown after all were tried. */
  static closeKept(): void {
    const sets = PlexSet.allKept();
    PlexSet.keeper = undefined;
    let first: unknown;
    for (const s of sets) {
      try {
        s.close();
      } catch (e) {
        first ??= e;
      }
    }
    if (first !== undefined) throw first;
  }

  private static keep(set: PlexSet): PlexSet {
    if (PlexSet.keeper) {
      PlexSet.keeper.set(set.primary.name, set);
      PlexSet.onKeptChange?.(set.primary.name);
    }
    return set;
  }

  /** Whether a long operation runs on this set now. */
  get busy(): boolean {
    return this.running > 0;
  }

  /** Every mirror of the set, the absent pairs' included (the primary's write path). */
  mirrors(): NativeMirror[] {
    return [...this.pairs.values(), ...this.absent.values()].map((p) => p.mirror);
  }

  /** The mirror of the pair whose secondary is `secondary`, present or absent. */
  mirrorOf(secondary: string): NativeMirror | undefined {
    return (this.pairs.get(secondary) ?? this.absent.get(secondary))?.mirror;
  }

  private static openNew(store: VolumeStore, records: PairRecords, primaryName: string): PlexSet {
    const recs = records.ofPrimary(primaryName);
    if (recs.length === 0) throw new PlexusError('E_NOENT', `volume ${primaryName} is not the primary of any pair`);
    const lock = callNative(() => native.NativeOwnerLock.acquire(records.lockFile(primaryName), `pairs of ${primaryName}`));
    try {
      const before = new Map(recs.map((r) => [r.secondary, r.state]));
      const leftOpen = records.wasLeftOpen(primaryName);
      if (leftOpen) suspendUntracked(records, recs);
      records.markOpen(primaryName, true);
      const primary = store.open(primaryName);
      const pairs = new Map<string, OpenPair>();
      const absent = new Map<string, { record: PairRecord; mirror: NativeMirror }>();
      let first: NativeMirror | undefined;
      for (const record of recs) {
        const b = records.bitmaps(record.secondary);
        const paths = { primaryDirty: b.primaryDirty, secondaryDirty: b.secondaryDirty, filled: b.filled };
        let secondary: Volume;
        try {
          secondary = store.open(record.secondary);
        } catch (e) {
          const why = (e as Error).message;
          record.state = 'PSUE';
          record.lastError = `secondary unavailable: ${why}`;
          // An instant split's image is lost once the primary is written without its
          // copy on write; any other pair keeps recording, so its resync stays
          // differential. Only bitmaps that cannot be opened force a full one.
          let mirror: NativeMirror | undefined;
          if (!record.fillPending) {
            try {
              mirror = callNative(() => native.NativeMirror.openAbsent(primary.handle, record.secondary, why, paths, record.writeIntent, first));
            } catch {
              mirror = undefined;
            }
          }
          if (mirror) {
            first ??= mirror;
            absent.set(record.secondary, { record, mirror });
          } else record.needsFull = true;
          records.save(record);
          continue;
        }
        const mode = engineMode(record.state, record.fillPending);
        const mirror = callNative(() => native.NativeMirror.open(primary.handle, secondary.handle, paths, mode, record.writeIntent, first));
        first ??= mirror;
        if (leftOpen && record.state === 'PAIR' && !record.operation && callNative(() => mirror.dirtyBytes()) > 0) {
          // Written while mirrored when the owner died: a region whose duplexed write was
          // cut between the two copies may differ, and a split would clear that record.
          record.state = 'PSUE';
          record.lastError = `the owning process died during mirrored writes: ${callNative(() => mirror.dirtyBytes())} bytes may differ on the secondary; resync (differential) to repair`;
          callNative(() => mirror.setMode('track'));
          records.save(record);
        }
        pairs.set(record.secondary, { record, secondary, mirror });
      }
      const suspended = recs
        .filter((r) => r.state === 'PSUE' && before.get(r.secondary) !== 'PSUE')
        .map((r) => ({ primary: primaryName, secondary: r.secondary, reason: r.lastError ?? 'suspended', full: r.needsFull }));
      return new PlexSet(primary, pairs, lock, records, absent, suspended);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /** Creates a new pair on a set that is open (the first pair of a primary is created by `createFirst`). */
  addPair(record: PairRecord, secondary: Volume, instant: boolean): OpenPair {
    const b = this.records.bitmaps(record.secondary);
    const share = this.pairs.values().next().value?.mirror;
    const mirror = callNative(() =>
      native.NativeMirror.create(
        this.primary.handle,
        secondary.handle,
        { primaryDirty: b.primaryDirty, secondaryDirty: b.secondaryDirty, filled: b.filled },
        record.granularity,
        record.writeIntent,
        instant,
        share,
      ),
    );
    const open = { record, secondary, mirror };
    this.pairs.set(record.secondary, open);
    this.syncPlex();
    this.records.save(record);
    if (PlexSet.keeper?.get(this.primary.name) === this) PlexSet.onKeptChange?.(this.primary.name);
    return open;
  }

  /** The open pair whose secondary is `secondary`. */
  get(secondary: string): OpenPair {
    const p = this.pairs.get(secondary);
    if (!p) {
      const gone = this.absent.get(secondary);
      if (gone) throw new PlexusError('E_NOENT', `pair ${this.primary.name} → ${secondary} is suspended: ${gone.record.lastError ?? 'its secondary is unavailable'}`);
      throw new PlexusError('E_NOENT', `no open pair ${this.primary.name} → ${secondary}`);
    }
    return p;
  }

  /** Takes a pair out of the set without flushing it, so its files can be removed
   * (closing would write its bitmaps again). */
  forget(secondary: string): void {
    this.pairs.delete(secondary);
    this.absent.delete(secondary);
    this.syncPlex();
    if (PlexSet.keeper?.get(this.primary.name) === this) PlexSet.onKeptChange?.(this.primary.name);
  }

  /** Writes to the primary through every pair (duplexed, tracked or copy-on-write). A
   * plex whose secondary refuses the write is suspended (PSUE) by the engine, which
   * keeps the region recorded; the write still succeeds on the primary and the others. */
  writePrimary(offset: number, data: Buffer): void {
    try {
      callNative(() => this.plex.write(offset, data));
    } finally {
      this.recordSuspensions();
    }
  }

  /** `writePrimary` off the JS thread when the primary is remote-replicated (a synchronous pair waits for the remote). */
  async writePrimaryAsync(offset: number, data: Buffer): Promise<void> {
    if (!this.plex.replicated) return this.writePrimary(offset, data);
    try {
      await awaitNative(callNative(() => this.plex.writeAsync(offset, data)));
    } finally {
      this.recordSuspensions();
    }
  }

  /** Pairs whose secondary could not be opened (suspended; their bitmaps still record). */
  absentPairs(): Array<{ record: PairRecord; mirror: NativeMirror }> {
    return [...this.absent.values()];
  }

  /** Pairs the engine suspended since the last look, now recorded as PSUE. */
  recordSuspensions(): string[] {
    const out: string[] = [];
    for (const p of this.pairs.values()) {
      const failure = p.mirror.failure;
      if (!failure || p.record.state === 'PSUE') continue;
      p.record.state = 'PSUE';
      p.record.lastError = failure;
      this.records.save(p.record);
      out.push(p.record.secondary);
      this.onSuspend?.({ primary: this.primary.name, secondary: p.record.secondary, reason: failure, full: p.record.needsFull });
    }
    return out;
  }

  /** Persists a record change. */
  save(record: PairRecord): void {
    this.records.save(record);
  }

  /** Runs a resync or fill job with progress persisted into the record for other processes. */
  async runJob(pair: OpenPair, job: InstanceType<typeof native.MirrorJob>, onProgress?: ProgressCallback, signal?: AbortSignal): Promise<MirrorCopyReport> {
    const abort = (): void => job.cancel();
    signal?.addEventListener('abort', abort, { once: true });
    // The record was saved as the job started; the next save is a checkpoint later.
    let lastSave = Date.now();
    this.running++;
    try {
      return await withPolledProgress(
        pair.record.operation?.kind ?? 'resync',
        awaitNative(job.run()),
        () => job.progress(),
        (e) => {
          onProgress?.(e);
          const op = pair.record.operation;
          if (op?.full && e.total > 0) {
            // The copy has started, so the engine's "everything dirty" is durable in
            // the bitmap: resuming must copy only what is left, not everything again.
            op.full = false;
            op.done = e.done;
            op.total = e.total;
            this.records.save(pair.record);
          }
          const now = Date.now();
          if (pair.record.operation && now - lastSave > 500) {
            lastSave = now;
            pair.record.operation.done = e.done;
            pair.record.operation.total = e.total;
            this.records.save(pair.record);
          }
        },
      );
    } finally {
      this.running--;
      signal?.removeEventListener('abort', abort);
    }
  }

  /** Closes cleanly: stale write-intent bits of mirrored pairs are cleared, bitmaps and
   * volumes flushed, the lock released. */
  close(): void {
    if (this.closed) return;
    const keeper = PlexSet.keeper;
    if (keeper?.get(this.primary.name) === this) {
      // Kept by a long-lived owner: an operation's end leaves it open, unless the set
      // has no pairs left (its primary is a plain volume again).
      this.recordSuspensions();
      if (this.pairs.size > 0 || this.absent.size > 0) return;
      keeper.delete(this.primary.name);
      PlexSet.onKeptChange?.(this.primary.name);
    }
    this.closed = true;
    try {
      this.recordSuspensions();
      for (const p of this.pairs.values()) {
        if (p.record.state === 'PAIR' && isDuplexing(p.record.state)) callNative(() => p.mirror.clearIntent());
        else callNative(() => p.mirror.flush());
      }
      for (const p of this.absent.values()) callNative(() => p.mirror.flush());
      // A plex shared with an export goes on serving the primary as a plain volume.
      this.plex.setMirrors([]);
      this.plex.closeCheckpoints();
      this.records.markOpen(this.primary.name, false);
    } finally {
      this.lock.release();
    }
  }

  /** Creates the first pair of a primary, taking the primary's lock. */
  static createFirst(store: VolumeStore, records: PairRecords, record: PairRecord, instant: boolean): PlexSet {
    const lock = callNative(() => native.NativeOwnerLock.acquire(records.lockFile(record.primary), `pairs of ${record.primary}`));
    try {
      records.markOpen(record.primary, true);
      const primary = store.open(record.primary);
      const set = new PlexSet(primary, new Map(), lock, records);
      set.addPair(record, store.open(record.secondary), instant);
      return PlexSet.keep(set);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /** Splits several mirrors together at one write boundary (a consistency group). */
  static splitAll(mirrors: NativeMirror[]): void {
    native.NativeMirror.splitGroup(mirrors);
  }

  /** Whether some live process has the pairs of `primary` open. Asked without taking
   * the lock, even for an instant (which would make an owner starting at that moment
   * fail with E_BUSY): the kernel's table of locks is read instead where there is one. */
  static isOpenElsewhere(records: PairRecords, primary: string): boolean {
    // A set this process keeps open is "elsewhere" only while one of its jobs runs.
    const kept = PlexSet.keeper?.get(primary);
    if (kept) return kept.busy;
    return native.NativeOwnerLock.isHeld(path.join(records.dir, `${primary}.lock`));
  }
}

/** Why a pair without write intent was suspended after its owner died. */
const OWNER_DIED = 'the owning process died and the pair keeps no write intent: a full resync is needed';

/**
 * What a pair becomes when its owner died with it open. Pairs with write intent lost
 * nothing (every dirty region was durable before its write was acknowledged) and stay
 * as they are; pairs without it may have lost dirty bits, so they are suspended for a
 * full resync. `display` shows this before the next owner applies it.
 */
export function afterOwnerDied(r: PairRecord): PairRecord {
  if (r.writeIntent || r.state === 'SMPL') return r;
  return { ...r, state: 'PSUE', needsFull: true, lastError: OWNER_DIED };
}

/** Applies `afterOwnerDied` to the records of a primary whose last owner died. */
function suspendUntracked(records: PairRecords, recs: PairRecord[]): void {
  for (const r of recs) {
    const after = afterOwnerDied(r);
    if (after === r) continue;
    Object.assign(r, after);
    records.save(r);
  }
}
