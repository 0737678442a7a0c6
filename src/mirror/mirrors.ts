import fs from 'node:fs';
import { asPlexusError, callNative, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { native } from '../native/binding.js';
import type { ProgressCallback } from '../progress.js';
import { failpoint } from '../util/failpoints.js';
import { guardMethods } from '../util/guard.js';
import { fileStamp, VolumeStore } from '../volumes/store.js';
import { describeHook, HookError, type HookResult, runHook } from './hooks.js';
import { type IoOptions, openVolumeIo, type VolumeIo } from './io.js';
import { afterOwnerDied, type MirrorCopyReport, type OpenPair, PlexSet } from './plexset.js';
import { type PairRecord, PairRecords } from './record.js';
import { isDuplexing, isSplit, type PairState } from './states.js';

/** Which pairs an operation applies to: all plexes of a primary, one plex, or a group. */
export interface PairSelector {
  primary?: string;
  plex?: string;
  group?: string;
}

/** Options of `create`. */
export interface CreatePairOptions {
  group?: string;
  /** Bytes per bitmap bit, a power of two from 512 B to 64 MiB (default 64 KiB). */
  granularity?: number;
  /** Split at once without a prior copy (Fig. 5b); the secondary fills in the background. */
  instant?: boolean;
  /** Persist each newly dirtied region before the write is acknowledged (default true). */
  writeIntent?: boolean;
  /** Hosts allowed to access the secondary once split (empty: every host); the list
   * applies in every state, from the initial copy on. */
  allow?: string[];
  /** Only create the pair; the copy is left to a later `resync` (it resumes it). */
  deferCopy?: boolean;
  threads?: number;
  /** Copy pace in bytes per second (default: as fast as possible). */
  maxRate?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** Options of `split`. */
export interface SplitOptions {
  readOnly?: boolean;
  /** Host identities allowed to access the secondary (empty: everyone). The list is
   * the pair's and applies in every state (see docs/mirrors.md); omitted, the pair keeps
   * the list it has. */
  allow?: string[];
  freeze?: string;
  thaw?: string;
  hookTimeoutMs?: number;
}

/** What a split did. */
export interface SplitReport {
  pairs: string[];
  splitAt: string;
  freeze?: HookResult;
  thaw?: HookResult;
  /** From the start of the freeze command to the end of the thaw command. */
  frozenMs?: number;
  /** The split itself (every pair at one write boundary, records saved). */
  splitMs: number;
}

/** Options of `resync`. */
export interface ResyncOptions {
  full?: boolean;
  reverse?: boolean;
  threads?: number;
  /** Copy pace in bytes per second (default: as fast as possible). */
  maxRate?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** One pair's result in a resync. */
export interface ResyncResult extends MirrorCopyReport {
  primary: string;
  secondary: string;
  resumed: boolean;
}

/** A pair as `display` shows it. */
export interface PairInfo {
  primary: string;
  secondary: string;
  group: string | null;
  state: PairState;
  granularity: number;
  dirtyBytes: number | null;
  operation: { kind: string; done: number; total: number; percent: number; interrupted: boolean } | null;
  busy: boolean;
  fillPending: boolean;
  readOnly: boolean;
  allow: string[];
  splitAt: string | null;
  frozenMs: number | null;
  lastError: string | null;
}

/** What `checkpoint` did. */
export interface CheckpointReport {
  primary: string;
  /** The generation started (or released). */
  generation: number;
  /** Every generation kept, oldest first; the last one records writes now. */
  generations: Array<{ number: number; frozen: boolean; dirtyBytes: number }>;
  /** The NBD meta context that reads the generation. */
  bitmap: string;
  released: boolean;
}

const DEFAULT_GRANULARITY = 64 * 1024;

/** Dirty regions of a bitmap file, read without writing anything. */
function readBitmapRuns(file: string): Array<{ offset: number; length: number }> {
  return callNative(() => native.NativeBitmap.readRuns(file));
}

/** Mirrored pairs of one home. */
export class Mirrors {
  readonly store: VolumeStore;
  readonly records: PairRecords;

  constructor(readonly home: Home) {
    this.store = new VolumeStore(home);
    this.records = PairRecords.of(home);
  }

  /** The records a selector names; E_NOENT when none. */
  select(sel: PairSelector): PairRecord[] {
    const all = this.records.all();
    let out: PairRecord[];
    if (sel.group !== undefined) out = all.filter((r) => r.group === sel.group);
    else if (sel.primary !== undefined) out = all.filter((r) => r.primary === sel.primary && (sel.plex === undefined || r.secondary === sel.plex));
    else out = all;
    if (out.length === 0 && (sel.group !== undefined || sel.primary !== undefined)) {
      const what = sel.group !== undefined ? `group ${sel.group}` : sel.plex !== undefined ? `${sel.primary} → ${sel.plex}` : `volume ${sel.primary}`;
      throw new PlexusError('E_NOENT', `no pair for ${what}`);
    }
    return out;
  }

  /** Pairs as users see them, with dirty bytes and progress. */
  display(sel: PairSelector = {}): PairInfo[] {
    return this.select(sel).map((r) => this.info(r));
  }

  private info(r: PairRecord): PairInfo {
    const busy = PlexSet.isOpenElsewhere(this.records, r.primary);
    const kept = PlexSet.kept(r.primary);
    const op = r.operation;
    // What the next owner will find: a dead owner without write intent suspends the pair;
    // with write intent, a pair in PAIR written since its last clean close is suspended
    // with those regions (see PlexSet.open).
    const leftOpen = !busy && !kept && this.records.wasLeftOpen(r.primary);
    if (leftOpen) r = afterOwnerDied(r);
    if (leftOpen && r.state === 'PAIR' && !op && (this.dirtyBytes(r) ?? 0) > 0) {
      r = { ...r, state: 'PSUE', lastError: 'the owning process died during mirrored writes: regions may differ on the secondary; resync (differential) to repair' };
    }
    return {
      primary: r.primary,
      secondary: r.secondary,
      group: r.group ?? null,
      state: r.state,
      granularity: r.granularity,
      dirtyBytes: busy ? (op ? Math.max(op.total - op.done, 0) : null) : kept ? this.liveDirtyBytes(kept, r) : this.dirtyBytes(r),
      operation: op ? { kind: op.kind, done: op.done, total: op.total, percent: op.total > 0 ? Math.floor((op.done / op.total) * 100) : 0, interrupted: !busy } : null,
      busy,
      fillPending: r.fillPending,
      readOnly: r.readOnly,
      allow: r.allow,
      splitAt: r.splitAt ?? null,
      frozenMs: r.frozenMs ?? null,
      lastError: r.lastError ?? null,
    };
  }

  /** Dirty bytes of a pair this process keeps open, from its bitmaps in memory. */
  private liveDirtyBytes(set: PlexSet, r: PairRecord): number | null {
    if (r.needsFull) return null;
    const m = set.mirrorOf(r.secondary);
    return m ? callNative(() => m.dirtyBytes()) : null;
  }

  /** Union of both sides' dirty regions, read from the bitmaps of an idle pair. */
  private dirtyBytes(r: PairRecord): number | null {
    try {
      const b = this.records.bitmaps(r.secondary);
      // Read-only: another process may be taking the pair right now, and opening the
      // bitmaps for real would cut a torn log tail, create a missing log or delete a
      // leftover snapshot that the owner is entitled to find.
      const runs = [...readBitmapRuns(b.primaryDirty), ...readBitmapRuns(b.secondaryDirty)].sort((x, y) => x.offset - y.offset);
      let total = 0;
      let end = -1;
      for (const run of runs) {
        const s = Math.max(run.offset, end);
        const e = run.offset + run.length;
        if (e > s) total += e - s;
        end = Math.max(end, e);
      }
      return r.needsFull ? null : total;
    } catch {
      return null;
    }
  }

  /** Pairs `primary` with `secondary` and, unless deferred, runs the initial copy (or an
   * instant pair's fill) to the end. */
  async create(primary: string, secondary: string, opts: CreatePairOptions = {}): Promise<PairInfo> {
    const granularity = opts.granularity ?? DEFAULT_GRANULARITY;
    if (!Number.isInteger(granularity) || granularity < 512 || granularity > 64 << 20 || (granularity & (granularity - 1)) !== 0) {
      throw new PlexusError('E_INVALID', `granularity ${granularity} must be a power of two from 512 B to 64 MiB`);
    }
    if (primary === secondary) throw new PlexusError('E_INVALID', `a volume cannot be paired with itself (${primary})`);
    const p = this.store.open(primary, { readOnly: true }).info();
    const s = this.store.open(secondary, { readOnly: true }).info();
    // A secondary may be larger (JP 2002-041345, Fig. 4): only the primary's size is
    // mirrored, the rest of the secondary is left as it is.
    if (s.size < p.size) {
      throw new PlexusError('E_SIZE', `size mismatch: secondary ${secondary} is ${s.size} bytes, smaller than primary ${primary} (${p.size} bytes)`);
    }
    const all = this.records.all();
    const clash = all.find((r) => r.secondary === secondary || r.primary === secondary || r.secondary === primary);
    if (clash) {
      throw new PlexusError('E_EXISTS', `volume ${clash.secondary === primary ? primary : secondary} is already in pair ${clash.primary} → ${clash.secondary}`);
    }
    const existing = this.records.ofPrimary(primary);
    if (existing.length > 0 && existing[0]!.granularity !== granularity) {
      throw new PlexusError('E_INVALID', `all plexes of ${primary} must use granularity ${existing[0]!.granularity}`);
    }
    const now = new Date().toISOString();
    const record: PairRecord = {
      format: 1,
      primary,
      secondary,
      group: opts.group,
      state: opts.instant ? 'PSUS' : 'COPY',
      granularity,
      writeIntent: opts.writeIntent ?? true,
      fillPending: Boolean(opts.instant),
      needsFull: false,
      readOnly: false,
      allow: opts.allow ?? [],
      operation: { kind: opts.instant ? 'fill' : 'copy', full: true, pid: process.pid, startedAt: now, done: 0, total: p.size },
      createdAt: now,
      updatedAt: now,
      splitAt: opts.instant ? now : undefined,
    };
    const set = existing.length > 0 ? PlexSet.open(this.store, this.records, primary) : PlexSet.createFirst(this.store, this.records, record, Boolean(opts.instant));
    let pair: OpenPair;
    try {
      pair = existing.length > 0 ? set.addPair(record, this.store.open(secondary), Boolean(opts.instant)) : set.get(secondary);
      if (!opts.deferCopy) await this.complete(set, pair, { threads: opts.threads, maxRate: opts.maxRate, onProgress: opts.onProgress, signal: opts.signal });
    } finally {
      set.close();
    }
    // After closing: an open set counts as busy, which would hide the dirty bytes.
    return this.info(pair.record);
  }

  /** Runs a pair's pending operation (initial copy, resync, reverse resync or fill). */
  private async complete(set: PlexSet, pair: OpenPair, opts: ResyncOptions): Promise<MirrorCopyReport> {
    const r = pair.record;
    const op = r.operation;
    if (!op) throw new PlexusError('E_STATE', `pair ${r.primary} → ${r.secondary} has nothing to do`);
    if (op.pid !== process.pid) {
      op.pid = process.pid;
      set.save(r);
    }
    const job =
      op.kind === 'fill'
        ? callNative(() => pair.mirror.fillJob(opts.threads, opts.maxRate))
        : callNative(() => pair.mirror.resyncJob(op.kind === 'reverse' ? 'reverse' : 'forward', op.kind !== 'copy' && op.full, opts.threads, opts.maxRate));
    try {
      const report = await set.runJob(pair, job, opts.onProgress, opts.signal);
      if (op.kind === 'fill') {
        r.fillPending = false;
        // The image is in the secondary's data file only now: stamp it as the fill left it.
        r.splitStamp = fileStamp(this.store.file(r.secondary));
      } else {
        r.state = 'PAIR';
        r.fillPending = false;
        r.needsFull = false;
        // The access list stays: it guards the secondary in every state.
        r.readOnly = false;
        r.splitAt = undefined;
        r.splitStamp = undefined;
        r.frozenMs = undefined;
      }
      r.operation = undefined;
      r.lastError = undefined;
      set.save(r);
      return report;
    } catch (e) {
      const code = (e as PlexusError).code;
      if (code === 'E_CANCELLED') {
        // Nothing to undo: the copy stopped between chunks, its progress is durable in
        // the bitmaps and the record keeps the operation, so running it again resumes.
        const verb = op.kind === 'fill' ? 'fill' : 'resync';
        throw new PlexusError(
          'E_CANCELLED',
          `${op.kind} of ${r.primary} → ${r.secondary} cancelled; what was copied is kept: run \`plexus pair ${verb} ${r.primary} --plex ${r.secondary}\` to resume`,
          { cause: e },
        );
      }
      // A failed copy suspends the pair; what was copied stays recorded.
      r.state = 'PSUE';
      r.lastError = (e as Error).message;
      r.operation = undefined;
      callNative(() => pair.mirror.setMode(r.fillPending ? 'instant' : 'track'));
      set.save(r);
      throw e;
    }
  }

  /**
   * Splits the selected pairs at one write boundary, between optional freeze and thaw.
   * Every hook settles (exit, signal, spawn failure, timeout). A freeze that fails
   * aborts the split and the thaw is not run (nothing was frozen by us); once the
   * freeze succeeded, the thaw runs whatever happens next. Errors say what happened to
   * the split and to each hook.
   */
  async split(sel: PairSelector, opts: SplitOptions = {}): Promise<SplitReport> {
    const recs = this.select(sel);
    for (const r of recs) {
      if (r.state !== 'PAIR') {
        throw new PlexusError('E_STATE', `pair ${r.primary} → ${r.secondary} is in ${r.state}; only a pair in PAIR can be split`);
      }
    }
    const sets = this.openSets(recs);
    try {
      // Resolved before the freeze: a pair that cannot be opened (its secondary gone) must
      // fail the split while nothing is frozen, not between the freeze and the thaw.
      const pairs = recs.map((r) => sets.get(r.primary)!.get(r.secondary));
      const timeout = opts.hookTimeoutMs ?? 60_000;
      const started = Date.now();
      let freeze: HookResult | undefined;
      if (opts.freeze) {
        try {
          freeze = await runHook('freeze', opts.freeze, timeout);
        } catch (e) {
          const h = e as HookError;
          throw new HookError(h.code, `${h.message}; the pairs were not split${opts.thaw ? ' and the thaw was not run (nothing was frozen)' : ''}`, h.hook, { cause: e });
        }
      }
      let splitAt: string | undefined;
      let failure: unknown;
      const splitStarted = Date.now();
      try {
        failpoint('pair-split');
        callNative(() => PlexSet.splitAll(pairs.map((p) => p.mirror)));
        splitAt = new Date().toISOString();
        for (const p of pairs) {
          p.record.state = 'PSUS';
          p.record.splitAt = splitAt;
          // What the split left: a backup compares it to see whether anything wrote since.
          p.record.splitStamp = fileStamp(this.store.file(p.record.secondary));
          p.record.readOnly = Boolean(opts.readOnly);
          if (opts.allow !== undefined) p.record.allow = opts.allow;
          p.record.lastError = undefined;
          p.record.frozenMs = undefined;
          this.records.save(p.record);
        }
      } catch (e) {
        failure = e;
        // Not split after all: nothing was written since the engine split (this process
        // holds the pairs), so putting them back into PAIR loses nothing.
        for (const p of pairs) {
          try {
            if (p.mirror.mode !== 'duplex') callNative(() => p.mirror.setMode('duplex'));
            if (p.record.state !== 'PAIR') {
              p.record.state = 'PAIR';
              p.record.splitAt = undefined;
              p.record.splitStamp = undefined;
              this.records.save(p.record);
            }
          } catch {
            // The record could not be put back either; the next split or resync sees it.
          }
        }
      }
      const splitMs = Date.now() - splitStarted;
      // The freeze succeeded (or there was none): the thaw runs whatever happened.
      let thaw: HookResult | undefined;
      let thawError: HookError | undefined;
      if (opts.thaw) {
        try {
          thaw = await runHook('thaw', opts.thaw, timeout);
        } catch (e) {
          thawError = e as HookError;
        }
      }
      const frozenMs = freeze || thaw || thawError ? Date.now() - started : undefined;
      if (failure !== undefined) {
        const f = asPlexusError(failure);
        const after = thawError ? `; ${thawError.message}` : thaw ? `; the thaw ran (${describeHook('thaw', thaw)})` : '';
        throw new PlexusError(f.code, `the pairs were not split: ${f.message}${after}`, { cause: failure });
      }
      for (const p of pairs) {
        p.record.frozenMs = frozenMs;
        this.records.save(p.record);
      }
      if (thawError) throw new HookError(thawError.code, `the pairs were split, but ${thawError.message}`, thawError.hook, { cause: thawError });
      return { pairs: pairs.map((p) => `${p.record.primary} → ${p.record.secondary}`), splitAt: splitAt!, freeze, thaw, frozenMs, splitMs };
    } finally {
      for (const s of sets.values()) s.close();
    }
  }

  /** Resynchronises the selected split pairs (or resumes an interrupted copy). */
  async resync(sel: PairSelector, opts: ResyncOptions = {}): Promise<ResyncResult[]> {
    const recs = this.select(sel);
    for (const r of recs) {
      if (r.state === 'PAIR') throw new PlexusError('E_STATE', `pair ${r.primary} → ${r.secondary} is already in PAIR`);
      if (opts.reverse && r.fillPending) {
        throw new PlexusError('E_STATE', `pair ${r.primary} → ${r.secondary} is an instant split still filling; a reverse resync needs a complete secondary`);
      }
    }
    const sets = this.openSets(recs);
    const results: ResyncResult[] = [];
    try {
      for (const r of recs) {
        const set = sets.get(r.primary)!;
        const pair = set.get(r.secondary);
        const rec = pair.record;
        const resumed = isDuplexing(rec.state) && rec.operation !== undefined;
        if (!resumed) {
          if (!isSplit(rec.state)) throw new PlexusError('E_STATE', `pair ${rec.primary} → ${rec.secondary} is in ${rec.state}`);
          const full = Boolean(opts.full) || rec.needsFull;
          rec.state = 'COPY(RS)';
          rec.operation = { kind: opts.reverse ? 'reverse' : 'resync', full, pid: process.pid, startedAt: new Date().toISOString(), done: 0, total: 0 };
          set.save(rec);
        }
        const report = await this.complete(set, pair, opts);
        results.push({ primary: rec.primary, secondary: rec.secondary, resumed, ...report });
      }
      return results;
    } finally {
      for (const s of sets.values()) s.close();
    }
  }

  /** Finishes the background fill of instant splits (resumes one that was interrupted). */
  async fill(sel: PairSelector, opts: ResyncOptions = {}): Promise<MirrorCopyReport[]> {
    const recs = this.select(sel).filter((r) => r.fillPending);
    const sets = this.openSets(recs);
    try {
      const out: MirrorCopyReport[] = [];
      for (const r of recs) {
        const pair = sets.get(r.primary)!.get(r.secondary);
        pair.record.operation ??= { kind: 'fill', full: true, pid: process.pid, startedAt: new Date().toISOString(), done: 0, total: 0 };
        out.push(await this.complete(sets.get(r.primary)!, pair, opts));
      }
      return out;
    } finally {
      for (const s of sets.values()) s.close();
    }
  }

  /** Waits until every selected pair is in `state`; false on timeout. A copy found
   * interrupted (its process gone) is resumed here when waiting for PAIR. */
  async wait(sel: PairSelector, state: PairState, timeoutMs: number, opts: ResyncOptions = {}): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const recs = this.select(sel);
      if (recs.every((r) => r.state === state && !(state === 'PAIR' && r.operation))) {
        // The process that finished an operation records the state before it closes the
        // pairs; give it a moment to let go, or the next command would find them busy.
        const settle = Date.now() + 1000;
        while (Date.now() < settle && recs.some((r) => PlexSet.isOpenElsewhere(this.records, r.primary))) await new Promise((r) => setTimeout(r, 10));
        return true;
      }
      const stalled = recs.filter((r) => r.operation && !PlexSet.isOpenElsewhere(this.records, r.primary));
      if (state === 'PAIR' && stalled.length > 0 && stalled.every((r) => isDuplexing(r.state))) {
        try {
          await this.resync(sel.group !== undefined ? sel : { primary: stalled[0]!.primary, plex: stalled[0]!.secondary }, opts);
          continue;
        } catch (e) {
          // Another process (a background copy just starting, another waiter) took the
          // operation over or finished it since the check: keep waiting for it.
          const code = (e as PlexusError).code;
          if (code !== 'E_BUSY' && code !== 'E_STATE') throw e;
        }
      }
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, Math.min(200, Math.max(deadline - Date.now(), 1))));
    }
  }

  /** Dissolves a pair (back to SMPL): its record and bitmaps are removed, the volumes kept. */
  delete(primary: string, plex?: string): string[] {
    const recs = this.select({ primary, plex });
    const sets = this.openSets(recs);
    try {
      for (const r of recs) {
        sets.get(r.primary)!.forget(r.secondary);
        this.records.remove(r.secondary);
      }
    } finally {
      for (const s of sets.values()) s.close();
    }
    // A plain volume records no checkpoints: generations kept past the last pair would
    // miss its later writes and mislead an incremental backup.
    if (this.records.ofPrimary(primary).length === 0) fs.rmSync(this.records.checkpointDir(primary), { recursive: true, force: true });
    return recs.map((r) => `${r.primary} → ${r.secondary}`);
  }

  /**
   * `pair checkpoint`: starts a new dirty-bitmap generation on `primary` (the first
   * starts generation 1), exported over NBD as `qemu:dirty-bitmap:checkpoint-N`; with
   * `release`, drops a frozen generation instead. E_NOENT when `primary` has no pairs.
   */
  checkpoint(primary: string, release?: number): CheckpointReport {
    this.select({ primary });
    const set = PlexSet.open(this.store, this.records, primary);
    try {
      const r = set.checkpoint(release);
      return { primary, ...r, bitmap: `qemu:dirty-bitmap:checkpoint-${r.generation}`, released: release !== undefined };
    } finally {
      set.close();
    }
  }

  /** Opens a volume for I/O as hosts see it, through its pairs. */
  async openIo(name: string, opts: IoOptions = {}): Promise<VolumeIo> {
    if (opts.write) {
      const { checkRemoteWrite } = await import('../home/remote-records.js');
      // In the agent every write goes through the volume's write path, whose fence
      // and journal decide; elsewhere remote replication's rules are checked here.
      if (!PlexSet.plexFor) checkRemoteWrite(this.store.home.dir, name, false);
    }
    return openVolumeIo(this.store, this.records, name, opts);
  }

  /** Opens the plex sets of the primaries of `recs` (all or nothing). */
  openSets(recs: PairRecord[]): Map<string, PlexSet> {
    const sets = new Map<string, PlexSet>();
    try {
      for (const primary of new Set(recs.map((r) => r.primary))) sets.set(primary, PlexSet.open(this.store, this.records, primary));
    } catch (e) {
      for (const s of sets.values()) s.close();
      throw e;
    }
    return sets;
  }
}

// The library's entry points: nothing but a PlexusError escapes them (docs/errors.md).
guardMethods(Mirrors, ['select', 'display', 'create', 'split', 'resync', 'fill', 'wait', 'delete', 'checkpoint', 'openIo', 'openSets']);
