/**
 * A backup job: a volume written to cartridges, spanning cartridges as they fill
 * (src/backup/stream-writer.ts), in one of three modes (JP 2001-095789):
 *
 * - `single`: one drive of one library, claimed (waiting for one if all are busy);
 * - `parallel` (Fig. 7/8): the job secures two or more independent streams — server,
 *   library, drive, cartridge and switch path each — and writes the same data down all
 *   of them at once; it succeeds when one copy completes, and the catalog keeps each
 *   copy that did;
 * - `chunked` (Fig. 11/12): the streams' movers are copy devices; the volume is cut
 *   into EXTENDED COPY segment commands, executed by stream 0's device until one fails
 *   or times out, then the rest — starting with the failed command — by the next
 *   stream's. Each stream's part is a location entry of the job, in order (Fig. 9).
 *
 * Every chunk is recorded in the catalog and, as msgpack, on its cartridge behind it.
 * Whatever a job secured is released when it ends, however it ends.
 */
import { Catalog } from '../catalog/catalog.js';
import { asPlexusError, guarded, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import type { ProgressCallback } from '../progress.js';
import { driveName, Inventory, markUnavailable } from '../resources/inventory.js';
import { logBackupManager } from '../resources/log.js';
import { DEFAULT_STREAM_WAIT_MS, waitForStreams } from '../resources/stream-wait.js';
import { releaseAll, type SecuredStream } from '../resources/streams.js';
import { provisionCartridges } from '../tape/disk-media.js';
import { planSegmentCommands, type SegmentCommand } from '../tape/drive.js';
import { Library } from '../tape/library.js';
import { VolumeStore } from '../volumes/store.js';
import type { Volume } from '../volumes/volume.js';
import type { CartridgeIndexEntry } from './cartridge-index.js';
import { classifySource, type SourceImage, settleConsistency } from './consistency.js';
import { register } from './libraries.js';
import { type StreamOutcome, StreamWriter } from './stream-writer.js';

/** How a job uses its streams. */
export type BackupMode = 'single' | 'parallel' | 'chunked';
export const BACKUP_MODES: readonly BackupMode[] = ['single', 'parallel', 'chunked'];

/** The smallest chunk: its catalog entry must stay small beside it (see runBackup). */
export const MIN_CHUNK = 64 << 10;
/** The default EXTENDED COPY chunk: 10 MiB. */
export const DEFAULT_CHUNK = 10 << 20;
/** The time a segment command may take before its device counts as hung, by default:
 * 10 s, or a second per MiB of larger chunks (a healthy device moves 10 MiB in milliseconds). */
export function defaultCommandTimeoutMs(chunk: number): number {
  return Math.max(10_000, Math.ceil(chunk / (1 << 20)) * 1000);
}

/** Options of a backup run. */
export interface BackupOptions {
  /** single (default), parallel or chunked. */
  mode?: BackupMode;
  /** Library to write to (single: default the only one; other modes: only this one, default any). */
  library?: string;
  /** Streams to secure (parallel and chunked; default 2). */
  streams?: number;
  /** Bytes per segment command (parallel and chunked; default 10 MiB). */
  chunk?: number;
  /** A segment command taking longer fails its stream (parallel and chunked; default 10 s, or 1 s per MiB of larger chunks). */
  commandTimeoutMs?: number;
  /** Schedule entry that started the job. */
  scheduleId?: number;
  /** Told the job's number as soon as its row exists (a policy run records it). */
  onJob?: (id: number) => void;
  /** Give up waiting for a drive after this long (default: wait for ever). */
  driveTimeoutMs?: number;
  /** Parallel and chunked: wait this long for streams other jobs hold, in turn, oldest
   * job first (default 600 000 ms; 0: fail at once, steps 1180/1190). */
  streamWaitMs?: number;
  onProgress?: ProgressCallback;
  /** Told about waits and cartridge changes, one line each. */
  onLog?: (line: string) => void;
  signal?: AbortSignal;
  /** Back up only the first `length` bytes of the source (a secondary larger than its
   * primary holds the primary's image in its first bytes); default: all of it. */
  length?: number;
  /** The host identity asking, checked against a secondary's access list (default:
   * $PLEXUS_HOST, else the hostname; see src/mirror/io.ts). */
  host?: string;
}

/** What one stream of a job did. */
export interface StreamReport {
  stream: number;
  /** Server or copy device (single mode: none). */
  mover: string | null;
  library: string;
  drive: string;
  /** Switches of its path. */
  path: string[];
  cartridges: string[];
  /** Bytes it wrote that the catalog records. */
  bytes: number;
  /** done; failed (with `error`); unused (chunked: the job finished before its turn). */
  status: 'done' | 'failed' | 'unused';
  error?: string;
}

/** What a backup did. */
export interface BackupReport {
  job: number;
  mode: BackupMode;
  target: string;
  /** The library of the first stream. */
  library: string;
  bytes: number;
  segments: number;
  /** Cartridges written, in order. */
  cartridges: string[];
  /** The copies of the data the catalog holds (parallel: one per stream that completed). */
  copies: number[];
  /** Location entries recorded (chunked: one per stream that wrote). */
  locations: number;
  streams: StreamReport[];
  /** Whether the job had to wait for a drive (single) or its streams (other modes). */
  waitedForDrive: boolean;
  /** How long it waited for them, in milliseconds (0: none). */
  waitedMs: number;
  elapsedMs: number;
  dataTime: string;
  /** A consistent image (a split secondary, a staged copy, unchanged while read) or a
   * crash-consistent copy of a live volume (see src/backup/consistency.ts). */
  consistency: 'consistent' | 'crash-consistent';
  /** Why, in words. */
  consistencyReason: string;
}

/** The library a command means: the one named, or the only one there is. */
export function chooseLibrary(home: Home, name?: string): Library {
  if (name !== undefined) return Library.open(home, name);
  const all = Library.list(home);
  if (all.length === 1) return all[0]!;
  if (all.length === 0)
    throw new PlexusError(
      'E_NOENT',
      'there is no library: create one with `plexus library create NAME --slots N --drives N --cartridge-size SIZE` (tape) or `plexus library create NAME --disk DIR` (disk)',
    );
  throw new PlexusError('E_INVALID', `there are ${all.length} libraries (${all.map((l) => l.name).join(', ')}): choose one with --library`);
}

/** What every mode needs: the job, its volume, the catalog. */
interface JobContext {
  home: Home;
  catalog: Catalog;
  volume: Volume;
  size: number;
  id: number;
  /** The job as cartridges describe it. */
  info: CartridgeIndexEntry['job'];
  opts: BackupOptions;
  /** Bytes per segment command, and the time one may take (checked). */
  chunk: number;
  timeoutMs: number;
  started: number;
  /** What the source is, as the job started. */
  image: SourceImage;
}

/** The longest command timeout, in milliseconds: 2^31 - 1 (24.8 days), as `setTimeout` and the native binding allow. */
export const MAX_COMMAND_TIMEOUT_MS = 2_147_483_647;

/** Backs up volume `source` of the home to tape. Every failure is a PlexusError. */
export function runBackup(home: Home, source: string, opts: BackupOptions = {}): Promise<BackupReport> {
  return guarded(() => backup(home, source, opts));
}

async function backup(home: Home, source: string, opts: BackupOptions): Promise<BackupReport> {
  const started = Date.now();
  const mode = opts.mode ?? 'single';
  if (!BACKUP_MODES.includes(mode)) throw new PlexusError('E_INVALID', `backup mode must be one of ${BACKUP_MODES.join(', ')}, not '${String(mode)}'`);
  const chunk = opts.chunk ?? DEFAULT_CHUNK;
  // A cartridge's catalog file lists its chunks (about 350 bytes each) inside the
  // early-warning zone (at least 1% of the cartridge): 64 KiB chunks keep it under half that.
  if (!Number.isSafeInteger(chunk) || chunk < MIN_CHUNK) throw new PlexusError('E_INVALID', `the chunk size must be at least 64 KiB, not ${String(chunk)}`);
  const timeout = opts.commandTimeoutMs ?? defaultCommandTimeoutMs(chunk);
  if (!(timeout > 0 && timeout <= MAX_COMMAND_TIMEOUT_MS)) {
    throw new PlexusError('E_INVALID', `the command timeout must be a positive number of milliseconds up to ${MAX_COMMAND_TIMEOUT_MS} (24.8 days), not ${String(timeout)}`);
  }
  const store = new VolumeStore(home);
  const volume = store.open(source, { readOnly: true });
  if (opts.length !== undefined && (!Number.isSafeInteger(opts.length) || opts.length < 0 || opts.length > volume.size)) {
    throw new PlexusError('E_RANGE', `length ${String(opts.length)} is outside volume ${source} (${volume.size} bytes)`);
  }
  const size = opts.length ?? volume.size;
  const image = classifySource(home, source, opts.host);
  const dataTime = image.dataTime;
  const lib = mode === 'single' ? chooseLibrary(home, opts.library) : undefined;
  if (!lib) {
    // Chunks follow one another in a segment file: each must end on a block boundary.
    for (const l of opts.library !== undefined ? [Library.open(home, opts.library)] : Library.list(home)) {
      if (chunk % l.config.blockSize !== 0) {
        throw new PlexusError('E_INVALID', `the chunk size (${chunk} bytes) must be a multiple of the block size of library ${l.name} (${l.config.blockSize} bytes)`);
      }
    }
  }
  const catalog = Catalog.open(home);
  let id: number | undefined;
  try {
    for (const l of lib ? [lib] : opts.library !== undefined ? [Library.open(home, opts.library)] : Library.list(home)) {
      register(catalog, l);
      // Streams are secured with a cartridge each before they start: a disk library
      // makes sure it has them (a tape library has what its slots hold).
      if (!lib) provisionCartridges(catalog, l, opts.streams ?? 2);
    }
    id = catalog.startJob({ target: source, targetSize: size, mode, dataTime, scheduleId: opts.scheduleId, consistency: image.consistency });
    opts.onJob?.(id);
    const row = catalog.job(id);
    const info = { id, target: source, targetSize: size, mode, startedAt: row.startedAt, dataTime, consistency: image.consistency };
    const ctx: JobContext = { home, catalog, volume, size, id, info, opts, chunk, timeoutMs: timeout, started, image };
    if (lib) return await runSingle(ctx, lib);
    return await runStreams(ctx, mode === 'parallel' ? 'parallel' : 'chunked');
  } catch (e) {
    const err = asPlexusError(e);
    // Every way out settles the job (a path that did not is a bug, recorded as one); the
    // job's lock goes with it, so nothing is left running.
    if (id !== undefined && catalog.runsJob(id)) {
      catalog.finishJob(id, 'failed', `${err.code}: ${err.message}`);
      throw new PlexusError(err.code, `backup job ${id} of ${source} failed: ${err.message}`, { cause: err });
    }
    throw err;
  } finally {
    if (id !== undefined && catalog.runsJob(id)) catalog.finishJob(id, 'failed', 'E_INTERNAL: the job returned without settling');
    catalog.close();
  }
}

/** Ends a job as failed and throws the error, naming the job. */
function fail(ctx: JobContext, e: unknown): never {
  const err = asPlexusError(e);
  ctx.catalog.finishJob(ctx.id, 'failed', `${err.code}: ${err.message}`);
  throw new PlexusError(err.code, `backup job ${ctx.id} of ${ctx.info.target} failed: ${err.message}`, { cause: err });
}

/** Ends a job as done, with what its data turned out to be. */
function finishDone(ctx: JobContext): void {
  const settled = settleConsistency(ctx.home, ctx.info.target, ctx.image);
  ctx.image = { ...ctx.image, ...settled };
  ctx.catalog.setJobConsistency(ctx.id, settled.consistency);
  ctx.catalog.finishJob(ctx.id, 'done');
}

function report(ctx: JobContext, mode: BackupMode, streams: StreamReport[], outcomes: StreamOutcome[], waitedMs: number): BackupReport {
  const locations = ctx.catalog.locations(ctx.id);
  return {
    job: ctx.id,
    mode,
    target: ctx.info.target,
    library: streams[0]?.library ?? '',
    bytes: ctx.catalog.job(ctx.id).bytes,
    // Rows the catalog keeps (a failed parallel copy's are dropped).
    segments: ctx.catalog.segments(ctx.id).length,
    cartridges: outcomes.flatMap((o) => o.cartridges),
    copies: [...new Set(locations.map((l) => l.copy))],
    locations: locations.length,
    streams,
    waitedForDrive: waitedMs > 0,
    waitedMs,
    elapsedMs: Date.now() - ctx.started,
    dataTime: ctx.info.dataTime,
    consistency: ctx.image.consistency,
    consistencyReason: ctx.image.reason,
  };
}

/**
 * The drives of `lib` a single-stream job must not claim: those the inventory marks
 * unavailable (by hand, or after a command got stuck in one) or that have an
 * `unavailable` fault. Read only: the inventory is not synced here.
 */
export function unavailableDrives(catalog: Catalog | undefined, home: Home, lib: Library): Set<number> {
  const inv = Inventory.open(home, { sync: false, catalog });
  try {
    const names = Array.from({ length: lib.config.drives }, (_, d) => driveName(lib.name, d));
    const off = new Set(inv.unavailableAmong(names));
    return new Set(names.flatMap((n, d) => (off.has(n) ? [d] : [])));
  } finally {
    inv.close();
  }
}

/** One stream on one claimed drive of `lib`, as the tape issue built it. */
async function runSingle(ctx: JobContext, lib: Library): Promise<BackupReport> {
  const { catalog, opts, id } = ctx;
  const location = { copy: 0, seq: 0, library: lib.name, stream: 0 };
  const locationId = catalog.addLocation(id, location);
  let waitFrom: number | undefined;
  let claim: Awaited<ReturnType<Library['claimDrive']>>;
  try {
    claim = await lib.claimDrive({
      signal: opts.signal,
      timeoutMs: opts.driveTimeoutMs,
      unavailable: () => unavailableDrives(catalog, ctx.home, lib),
      onWait: () => {
        waitFrom = Date.now();
        opts.onLog?.(`job ${id}: every drive of library ${lib.name} is busy; waiting for one`);
      },
    });
  } catch (e) {
    catalog.setLocationStatus(locationId, 'failed');
    fail(ctx, e);
  }
  // At least 1 ms once it waited: waitedForDrive is waitedMs > 0.
  const waitedMs = waitFrom === undefined ? 0 : Math.max(1, Date.now() - waitFrom);
  let outcome: StreamOutcome;
  try {
    const writer = new StreamWriter({
      catalog,
      volume: ctx.volume,
      lib,
      claim,
      job: ctx.info,
      location: { id: locationId, ...location },
      countBytes: true,
      onProgress: (done) => opts.onProgress?.({ operation: 'backup', done, total: ctx.size }),
      onLog: (l) => opts.onLog?.(`job ${id}: ${l}`),
      signal: opts.signal,
    });
    // One command for the whole volume: early warning cuts it into one chunk per cartridge.
    outcome = await writer.run(ctx.size > 0 ? [{ id: 0, sourceOffset: 0, length: ctx.size }] : []);
  } finally {
    claim.release();
  }
  // A command that did not return from a cancel (Ctrl-C) does not prove the device broken: only a timeout does.
  if (outcome.stuck && outcome.error?.code !== 'E_CANCELLED')
    markUnavailable(ctx.home, [driveName(lib.name, claim.drive), outcome.stuck.cartridge], `job ${id}: a segment command got stuck and was given up`);
  catalog.setLocationStatus(locationId, outcome.error ? 'failed' : 'done');
  if (outcome.error) fail(ctx, outcome.error);
  finishDone(ctx);
  const stream: StreamReport = { stream: 0, mover: null, library: lib.name, drive: driveName(lib.name, claim.drive), path: [], cartridges: outcome.cartridges, bytes: outcome.bytes, status: 'done' };
  return report(ctx, 'single', [stream], [outcome], waitedMs);
}

/** The stream's part of a report. */
function streamReport(s: SecuredStream, o: StreamOutcome | undefined): StreamReport {
  return {
    stream: s.stream,
    mover: s.mover.name,
    library: s.library.name,
    drive: s.driveName,
    path: [...s.path],
    cartridges: o?.cartridges ?? [],
    bytes: o?.bytes ?? 0,
    status: !o ? 'unused' : o.error ? 'failed' : 'done',
    ...(o?.error ? { error: `${o.error.code}: ${o.error.message}` } : {}),
  };
}

/** Parallel and chunked modes: secure the streams, run them, release them. */
async function runStreams(ctx: JobContext, mode: 'parallel' | 'chunked'): Promise<BackupReport> {
  const { catalog, opts, id, home } = ctx;
  const log = (line: string): void => {
    logBackupManager(home, `job ${id}: ${line}`);
    opts.onLog?.(`job ${id}: ${line}`);
  };
  let streams: SecuredStream[];
  let waitedMs: number;
  try {
    ({ streams, waitedMs } = await waitForStreams(home, {
      jobId: id,
      count: opts.streams ?? 2,
      mover: mode === 'parallel' ? 'server' : 'copy-device',
      library: opts.library,
      waitMs: opts.streamWaitMs ?? DEFAULT_STREAM_WAIT_MS,
      signal: opts.signal,
      onWait: (line) => opts.onLog?.(line),
    }));
  } catch (e) {
    fail(ctx, e);
  }
  const commands = planSegmentCommands(0, ctx.size, ctx.chunk);
  const outcomes = new Map<number, StreamOutcome>();
  const progress = new Map<number, number>();
  const total = mode === 'parallel' ? ctx.size * streams.length : ctx.size;
  // Parallel streams each write the whole volume; chunked ones write one after another.
  const tell = (stream: number, done: number): void => {
    progress.set(mode === 'parallel' ? stream : 0, done);
    opts.onProgress?.({ operation: 'backup', done: [...progress.values()].reduce((a, b) => a + b, 0), total });
  };

  /** Runs `queue` down stream `s` into a new location entry; never throws: a failure is the outcome's error. */
  const runStream = async (s: SecuredStream, location: CartridgeIndexEntry['location'], queue: SegmentCommand[], before: number): Promise<{ outcome: StreamOutcome; locId: number }> => {
    const locId = catalog.addLocation(id, location);
    let outcome: StreamOutcome;
    try {
      const check = s.check();
      if (check.fault.targets.length > 0) log(`stream ${s.stream}: faults on ${check.fault.targets.join(', ')}`);
      const gone = [...check.unavailable, ...check.lost];
      if (gone.length > 0) throw new PlexusError('E_RESOURCES', `stream ${s.stream} cannot run: ${gone.join(', ')} ${gone.length === 1 ? 'is' : 'are'} no longer available to it`);
      const writer = new StreamWriter({
        catalog,
        volume: ctx.volume,
        lib: s.library,
        claim: s.drive,
        first: s.cartridge,
        job: ctx.info,
        location: { id: locId, ...location },
        countBytes: mode === 'chunked',
        timeoutMs: ctx.timeoutMs,
        fault: check.fault,
        onProgress: (done) => tell(s.stream, before + done),
        onLog: (l) => opts.onLog?.(`job ${id}: stream ${s.stream}: ${l}`),
        signal: opts.signal,
      });
      outcome = await writer.run(queue);
    } catch (e) {
      outcome = { error: asPlexusError(e), bytes: 0, segments: 0, cartridges: [], remaining: [...queue] };
    }
    if (outcome.stuck && outcome.error?.code !== 'E_CANCELLED') {
      // A device that never came back from a command would hang the next job too
      // (after a timeout; a cancel that was not answered in time does not prove it).
      const names = markUnavailable(home, [s.mover.name, s.driveName, outcome.stuck.cartridge], `job ${id} stream ${s.stream}: a segment command got stuck and was given up`);
      log(`stream ${s.stream}: ${names.join(', ')} marked unavailable (stuck)`);
    }
    outcomes.set(s.stream, outcome);
    return { outcome, locId };
  };

  try {
    if (mode === 'parallel') {
      // Every stream writes the whole volume at once, each on its own native threads;
      // all of them have ended (and unloaded) before anything is released.
      await Promise.allSettled(
        streams.map(async (s) => {
          const { outcome: o, locId } = await runStream(s, { copy: s.stream, seq: 0, library: s.library.name, stream: s.stream }, commands, 0);
          if (o.error) {
            // Only completed copies stay in the catalog; the failure goes to the log.
            catalog.dropLocation(locId);
            log(`stream ${s.stream} (${s.mover.name}, ${s.driveName}) failed after ${o.bytes} bytes: ${o.error.code}: ${o.error.message}`);
          } else {
            catalog.setLocationStatus(locId, 'done');
            log(`stream ${s.stream} (${s.mover.name}, ${s.driveName}) completed copy ${s.stream}`);
          }
        }),
      );
      if (opts.signal?.aborted) throw new PlexusError('E_CANCELLED', `backup job ${id} cancelled`);
      if ([...outcomes.values()].every((o) => o.error)) throw allFailed(streams, outcomes);
      catalog.setJobBytes(id, ctx.size);
    } else {
      let queue = commands;
      let seq = 0;
      for (const s of streams) {
        if (queue.length === 0) break;
        const before = ctx.size - queue.reduce((a, c) => a + c.length, 0);
        const { outcome: o, locId } = await runStream(s, { copy: 0, seq, library: s.library.name, stream: s.stream }, queue, before);
        if (o.segments === 0) catalog.dropLocation(locId);
        else {
          catalog.setLocationStatus(locId, 'done');
          seq++;
        }
        queue = o.remaining;
        if (!o.error) break;
        // A cancelled job stops; only a failing stream hands its commands on.
        if (opts.signal?.aborted) throw o.error;
        const next = streams[s.stream + 1];
        log(
          `stream ${s.stream} (copy device ${s.mover.name}) stopped at command ${queue[0]?.id ?? '-'}: ${o.error.code}: ${o.error.message}; ` +
            (next ? `moving ${queue.length} commands from byte ${queue[0]?.sourceOffset ?? 0} to stream ${next.stream} (copy device ${next.mover.name})` : 'no stream left'),
        );
      }
      if (queue.length > 0) throw allFailed(streams, outcomes);
    }
  } catch (e) {
    try {
      releaseAll(streams);
    } finally {
      fail(ctx, e);
    }
  }
  // Released before the job ends: its reservations live as long as its lock, and a job
  // ended with them still held would have them released under it as a dead job's.
  let unreleased: unknown;
  try {
    releaseAll(streams);
  } catch (e) {
    unreleased = e;
  }
  finishDone(ctx);
  // The data is safe and the job done; the release failure is still the command's.
  if (unreleased !== undefined) throw unreleased;
  log(`done: ${mode}, ${catalog.locations(id).length} location entries, waited ${waitedMs} ms for streams`);
  const reports = streams.map((s) => streamReport(s, outcomes.get(s.stream)));
  return report(ctx, mode, reports, [...outcomes.values()], waitedMs);
}

/** The error of a job none of whose streams got the data through. */
function allFailed(streams: readonly SecuredStream[], outcomes: ReadonlyMap<number, StreamOutcome>): PlexusError {
  const errs = streams.map((s) => [s, outcomes.get(s.stream)?.error] as const).filter(([, e]) => e);
  const first = errs[0]?.[1];
  const text = errs.map(([s, e]) => `stream ${s.stream} (${s.mover.name}): ${e!.code}: ${e!.message}`).join('; ');
  return new PlexusError(first?.code ?? 'E_IO', `every stream failed: ${text}`);
}
