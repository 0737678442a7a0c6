/**
 * Restore (Fig. 10 of JP 2001-095789): a job's segments are read in order, across
 * cartridges, drives and libraries, each verified, into a file. A byte range reads only
 * the segments that cover it. The destination appears only when everything verified.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Catalog, type JobRow, type SegmentRow } from '../catalog/catalog.js';
import { asPlexusError, fromSystem, guarded, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import type { NativePlex } from '../native/binding.js';
import type { ProgressCallback } from '../progress.js';
import { logBackupManager } from '../resources/log.js';
import { TapeDrive } from '../tape/drive.js';
import { type DriveClaim, Library } from '../tape/library.js';
import { unavailableDrives } from './backup.js';

/** Options of a restore. */
export interface RestoreOptions {
  /** First byte of the source to restore (default 0). */
  offset?: number;
  /** Bytes to restore (default: to the end of the source). */
  length?: number;
  /** Replace an existing destination file. */
  force?: boolean;
  onProgress?: ProgressCallback;
  onLog?: (line: string) => void;
  signal?: AbortSignal;
}

/** What a restore did. */
export interface RestoreReport {
  job: number;
  target: string;
  to: string;
  offset: number;
  bytes: number;
  /** Segments read, in order. */
  segments: number;
  /** Cartridges loaded, in the order they were loaded. */
  loaded: string[];
  /** Which copy of the job was read. */
  copy: number;
  elapsedMs: number;
}

/** The segments of one copy of a job that cover [from, to), in source order, or the first gap. */
function cover(segs: SegmentRow[], from: number, to: number): { segments: SegmentRow[]; gap?: number } {
  const sorted = [...segs].sort((a, b) => a.sourceOffset - b.sourceOffset);
  const out: SegmentRow[] = [];
  let at = from;
  for (const s of sorted) {
    const end = s.sourceOffset + s.length;
    if (end <= at || s.sourceOffset >= to) continue;
    if (s.sourceOffset > at) return { segments: out, gap: at };
    out.push(s);
    at = end;
    if (at >= to) break;
  }
  return at >= to ? { segments: out } : { segments: out, gap: at };
}

function cancelledRestore(jobId: number, dest: string, cause?: unknown): PlexusError {
  return new PlexusError('E_CANCELLED', `restore of job ${jobId} cancelled: nothing was written to ${dest}`, { cause });
}

/** Restores job `jobId` (or a byte range of it) to the file `to`. Every failure is a PlexusError. */
export function restoreJob(home: Home, jobId: number, to: string, opts: RestoreOptions = {}): Promise<RestoreReport> {
  return guarded(() => restore(home, jobId, to, opts));
}

/** What a restore reads: the job, the range and the segments of one copy covering it, in source order. */
export interface RestorePlan {
  job: JobRow;
  from: number;
  length: number;
  copy: number;
  segments: SegmentRow[];
}

/**
 * Which segments of which copy cover [offset, offset + length) of job `jobId`. Only the
 * segments that overlap the range are read from the catalog (segments_by_offset), so a
 * small range of a job of 10^5 segments costs a few rows; if those leave a gap (a copy
 * whose segments overlap one another), every segment of the job is considered, as
 * before. With `usable` (a segment's cartridge is there: `cartridgesPresent`), a copy
 * that covers the range on cartridges all present is preferred, so a restore falls
 * back to a surviving copy when another's cartridges are gone (a disk library's
 * directory lost); when every copy lacks one, the first is planned as before and the
 * restore names the missing cartridge. E_NOENT, E_STATE (running, or no copy covers
 * the range), E_EXPIRED, E_RANGE.
 */
export function planRestore(catalog: Catalog, jobId: number, opts: { offset?: number; length?: number; usable?: (s: SegmentRow) => boolean } = {}): RestorePlan {
  const job = catalog.job(jobId);
  if (job.status === 'running') throw new PlexusError('E_STATE', `backup job ${jobId} is still running`);
  if (job.status === 'expired') throw new PlexusError('E_EXPIRED', `backup job ${jobId} of ${job.target} has expired (its policy's retention): it cannot be restored`);
  const from = opts.offset ?? 0;
  const length = opts.length ?? job.targetSize - from;
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(length) || from < 0 || length < 0 || from + length > job.targetSize) {
    throw new PlexusError('E_RANGE', `range ${from}+${length} is outside job ${jobId} (${job.targetSize} bytes of ${job.target})`);
  }
  const end = from + length;
  const covering = (segs: SegmentRow[]): { copy: number; segments: SegmentRow[] } | { gap: number } => {
    // Any copy that covers the range will do; the first (the primary stream's) is
    // preferred, among those whose cartridges are all there when that is known.
    let firstGap = from;
    let lacking: { copy: number; segments: SegmentRow[] } | undefined;
    for (const c of [...new Set(segs.map((s) => s.copy))]) {
      const r = cover(
        segs.filter((s) => s.copy === c),
        from,
        end,
      );
      if (r.gap === undefined) {
        if (!opts.usable || r.segments.every(opts.usable)) return { copy: c, segments: r.segments };
        lacking ??= { copy: c, segments: r.segments };
      } else firstGap = Math.max(firstGap, r.gap);
    }
    return lacking ?? { gap: firstGap };
  };
  let r = covering(catalog.segmentsCovering(jobId, from, end));
  if ('gap' in r) r = covering(catalog.segments(jobId));
  if ('gap' in r) {
    throw new PlexusError('E_STATE', `backup job ${jobId} (${job.status}) holds no copy of bytes from ${r.gap} on: it cannot restore ${from}+${length}`);
  }
  return { job, from, length, copy: r.copy, segments: r.segments };
}

/**
 * Reads the segments of `planned` in order into `dest` (a file, or a volume's write path),
 * the byte at source offset `o` going to `o - shift` (a file holds the range from its
 * start: `shift` is the range's first byte; a volume holds it in place: 0), every block
 * and segment verified. Each cartridge is loaded once (a drive of each library claimed for
 * the whole restore, each cartridge locked while loaded, waits logged); everything claimed
 * is released however it ends. Returns the cartridges loaded and the bytes delivered.
 */
export async function readSegments(
  home: Home,
  planned: RestorePlan,
  opts: Pick<RestoreOptions, 'signal' | 'onLog' | 'onProgress'>,
  cancelled: () => PlexusError,
  dest: string | NativePlex,
  shift: number,
): Promise<{ loaded: string[]; bytes: number }> {
  // Each step also goes to the backup manager's log, as a backup's do (Fig. 10).
  const what = `restore of job ${planned.job.id}`;
  const log = (line: string): void => {
    logBackupManager(home, `${what}: ${line}`);
    opts.onLog?.(line);
  };
  try {
    const r = await readAll(home, planned, opts, cancelled, dest, shift, log);
    logBackupManager(home, `${what}: done, ${r.bytes} bytes from byte ${planned.from} read from ${r.loaded.join(', ')}; drives released`);
    return r;
  } catch (e) {
    logBackupManager(home, `${what}: failed (${(e as Error).message}); drives and cartridges released`);
    throw e;
  }
}

async function readAll(
  home: Home,
  planned: RestorePlan,
  opts: Pick<RestoreOptions, 'signal' | 'onProgress'>,
  cancelled: () => PlexusError,
  dest: string | NativePlex,
  shift: number,
  log: (line: string) => void,
): Promise<{ loaded: string[]; bytes: number }> {
  const loaded: string[] = [];
  const claims = new Map<string, DriveClaim>();
  let current: { barcode: string; tape: TapeDrive; release: () => void } | undefined;
  let done = 0;
  const { from, length } = planned;
  const end = from + length;
  try {
    for (const s of planned.segments) {
      if (opts.signal?.aborted) throw cancelled();
      if (current?.barcode !== s.barcode) {
        current?.release();
        current = undefined;
        const lib = Library.open(home, s.library);
        let claim = claims.get(lib.name);
        if (!claim) {
          // Drives out of service in the inventory (by hand, or a stuck command) are not used.
          claim = await lib.claimDrive({ signal: opts.signal, unavailable: () => unavailableDrives(undefined, home, lib), onWait: () => log(`waiting for a drive of library ${lib.name}`) });
          claims.set(lib.name, claim);
        }
        let lock = lib.tryClaimCartridge(s.barcode);
        if (!lock) {
          if (!lib.present(s.barcode)) throw new PlexusError('E_NOENT', `cartridge ${s.barcode} is missing from library ${lib.name} (${lib.cartridgeFile(s.barcode)})`);
          log(`waiting for cartridge ${s.barcode} of library ${lib.name}: another job has it loaded`);
          lock = await lib.claimCartridge(s.barcode, opts.signal);
        }
        let tape: TapeDrive;
        try {
          tape = TapeDrive.load(lib.cartridgeFile(s.barcode), true);
        } catch (e) {
          lock.release();
          throw e;
        }
        const c = claim;
        c.setLoaded(s.barcode);
        current = {
          barcode: s.barcode,
          tape,
          release: () => {
            try {
              tape.unload();
            } finally {
              c.setLoaded(null);
              lock.release();
            }
          },
        };
        loaded.push(s.barcode);
        log(`loaded ${s.barcode} (library ${lib.name}, drive ${claim.drive})`);
      }
      // The part of this segment inside the range, relative to the segment.
      const a = Math.max(from, s.sourceOffset) - s.sourceOffset;
      const b = Math.min(end, s.sourceOffset + s.length) - s.sourceOffset;
      const whole = a === 0 && b === s.length;
      const before = done;
      const r = await current.tape.readSegment(s.fileNumber, dest, s.sourceOffset + a - shift, {
        firstBlock: s.firstBlock,
        expectedLength: s.length,
        expectedDigest: s.checksum,
        range: whole ? undefined : { offset: a, length: b - a },
        signal: opts.signal,
        onProgress: (e) => opts.onProgress?.({ ...e, done: before + e.done, total: length }),
      });
      done += r.bytes;
    }
    return { loaded, bytes: done };
  } finally {
    current?.release();
    for (const c of claims.values()) c.release();
  }
}

/** Whether a segment's cartridge is in its library now (for `planRestore`'s `usable`). */
export function cartridgesPresent(home: Home): (s: SegmentRow) => boolean {
  const libs = new Map<string, Library | null>();
  return (s) => {
    if (!libs.has(s.library)) {
      try {
        libs.set(s.library, Library.open(home, s.library));
      } catch {
        libs.set(s.library, null);
      }
    }
    return libs.get(s.library)?.present(s.barcode) ?? false;
  };
}

/** `planRestore` on the home's catalog, preferring a copy whose cartridges are all present. */
export function planHomeRestore(home: Home, jobId: number, opts: { offset?: number; length?: number } = {}): RestorePlan {
  const catalog = Catalog.open(home);
  try {
    return planRestore(catalog, jobId, { ...opts, usable: cartridgesPresent(home) });
  } finally {
    catalog.close();
  }
}

async function restore(home: Home, jobId: number, to: string, opts: RestoreOptions): Promise<RestoreReport> {
  const started = Date.now();
  const planned = planHomeRestore(home, jobId, opts);
  const { job, from, length, copy, segments: plan } = planned;
  const dest = path.resolve(to);
  if (fs.existsSync(dest) && !opts.force) throw new PlexusError('E_EXISTS', `${dest} exists; restore with --force to replace it`);
  const partial = `${dest}.plexus-partial`;
  if (opts.signal?.aborted) throw cancelledRestore(jobId, dest);
  try {
    fs.writeFileSync(partial, '');
    fs.truncateSync(partial, length);
  } catch (e) {
    fs.rmSync(partial, { force: true });
    throw fromSystem(e, partial);
  }

  let read: { loaded: string[]; bytes: number };
  try {
    read = await readSegments(home, planned, opts, () => cancelledRestore(jobId, dest), partial, from);
    if (opts.signal?.aborted) throw cancelledRestore(jobId, dest);
    fs.renameSync(partial, dest);
  } catch (e) {
    fs.rmSync(partial, { force: true });
    // However the cancel arrived (between segments, in a read, in a wait), one message.
    if (opts.signal?.aborted || (e instanceof PlexusError && e.code === 'E_CANCELLED')) throw cancelledRestore(jobId, dest, e);
    throw asPlexusError(fromSystem(e, partial));
  }
  return { job: jobId, target: job.target, to: dest, offset: from, bytes: read.bytes, segments: plan.length, loaded: read.loaded, copy, elapsedMs: Date.now() - started };
}
