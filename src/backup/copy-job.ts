/**
 * `plexus backup copy JOB --library L`: a second copy of a job's data in another library
 * — the staging of JP 2001-095789's disk target: back up to disk at night, copy to tape
 * later. The copy is recorded as the parallel mode records its copies: a location entry
 * of the same job with a copy number of its own, and the same rows in the catalog files
 * on the new cartridges, so a restore can read either copy and a rebuild finds both.
 *
 * The copy is written by the backup's own stream writer (src/backup/stream-writer.ts:
 * cartridges spanned at early warning, closed behind the writer, recorded once durable)
 * from a source that reads the existing copy from its cartridges, verifying every block
 * and segment digest (src/tape/source.ts), so holes stay holes. A drive of every
 * library involved is claimed, and every source cartridge, as backup and restore do.
 *
 * A failed copy keeps the location entries of what it recorded, marked failed: each of
 * those segments is whole and verified, and the copy number stays taken, since the
 * cartridges carry it (a rebuild would otherwise meet two copies of one number).
 */
import { Catalog, type JobRow, type SegmentRow } from '../catalog/catalog.js';
import { guarded, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import type { ProgressCallback } from '../progress.js';
import { driveName } from '../resources/inventory.js';
import type { SegmentCommand } from '../tape/drive.js';
import { Library } from '../tape/library.js';
import { TapeSource } from '../tape/source.js';
import { unavailableDrives } from './backup.js';
import type { CartridgeIndexEntry } from './cartridge-index.js';
import { register } from './libraries.js';
import { cartridgesPresent } from './restore.js';
import { StreamWriter } from './stream-writer.js';

/** Options of a copy. */
export interface CopyOptions {
  /** The library the new copy goes to. */
  library: string;
  /** The copy to read (default: the first whose cartridges are all present). */
  fromCopy?: number;
  /** Give up waiting for a drive of the target library after this long (default: wait). */
  driveTimeoutMs?: number;
  onProgress?: ProgressCallback;
  onLog?: (line: string) => void;
  signal?: AbortSignal;
}

/** What a copy did. */
export interface CopyReport {
  job: number;
  target: string;
  /** The copy read, and where it lies. */
  fromCopy: number;
  fromLibraries: string[];
  sourceCartridges: string[];
  /** The new copy's number and library. */
  copy: number;
  library: string;
  drive: string;
  /** Cartridges written, in order. */
  cartridges: string[];
  bytes: number;
  segments: number;
  elapsedMs: number;
}

/** Copies job `jobId` into another library. Every failure is a PlexusError. */
export function copyJob(home: Home, jobId: number, opts: CopyOptions): Promise<CopyReport> {
  return guarded(() => copy(home, jobId, opts));
}

/** Whether `segs` (by source offset) hold `[0, size)` end to end, with no gap or overlap. */
function tiles(segs: readonly SegmentRow[], size: number): boolean {
  let at = 0;
  for (const s of segs) {
    if (s.sourceOffset !== at) return false;
    at += s.length;
  }
  return at === size;
}

/** The copy to read: `fromCopy`, or the first complete one whose cartridges are all there. */
function chooseSource(catalog: Catalog, job: JobRow, present: (s: SegmentRow) => boolean, fromCopy?: number): { copy: number; segments: SegmentRow[] } {
  const segs = catalog.segments(job.id);
  const copies = fromCopy !== undefined ? [fromCopy] : [...new Set(segs.map((s) => s.copy))];
  let missing: SegmentRow | undefined;
  for (const c of copies) {
    const mine = segs.filter((s) => s.copy === c).sort((a, b) => a.sourceOffset - b.sourceOffset);
    if (!tiles(mine, job.targetSize)) continue;
    const gone = mine.find((s) => !present(s));
    if (gone) {
      missing ??= gone;
      continue;
    }
    return { copy: c, segments: mine };
  }
  if (missing) throw new PlexusError('E_NOENT', `no copy of job ${job.id} can be read: cartridge ${missing.barcode} of library ${missing.library} is missing`);
  throw new PlexusError('E_STATE', fromCopy !== undefined ? `job ${job.id} has no complete copy ${fromCopy}` : `job ${job.id} has no complete copy to read`);
}

/**
 * The segment commands of the copy: one per run of source segments ending on a block
 * boundary of the target (chunks follow one another in a segment file, and only a
 * file's last block may be short), so each command covers whole source segments.
 */
export function copyCommands(segments: readonly SegmentRow[], blockSize: number): SegmentCommand[] {
  const out: SegmentCommand[] = [];
  let start = 0;
  segments.forEach((s, i) => {
    const end = s.sourceOffset + s.length;
    if (end % blockSize === 0 || i === segments.length - 1) {
      out.push({ id: out.length, sourceOffset: start, length: end - start });
      start = end;
    }
  });
  return out;
}

/** Releases what was taken, in reverse order, whatever fails. */
function releaseAll(held: Array<{ release: () => void }>): void {
  for (const h of held.reverse()) {
    try {
      h.release();
    } catch {
      // The locks go with the process in any case.
    }
  }
}

async function copy(home: Home, jobId: number, opts: CopyOptions): Promise<CopyReport> {
  const started = Date.now();
  const log = (line: string): void => opts.onLog?.(`copy of job ${jobId}: ${line}`);
  const target = Library.open(home, opts.library);
  const catalog = Catalog.open(home);
  const held: Array<{ release: () => void }> = [];
  let source: TapeSource | undefined;
  try {
    const job = catalog.job(jobId);
    if (job.status !== 'done') throw new PlexusError('E_STATE', `job ${jobId} is ${job.status}: only a completed job is copied`);
    if (job.targetSize === 0) throw new PlexusError('E_INVALID', `job ${jobId} backed up no bytes: there is nothing to copy`);
    register(catalog, target);
    const from = chooseSource(catalog, job, cartridgesPresent(home), opts.fromCopy);
    const fromLibraries = [...new Set(from.segments.map((s) => s.library))];
    if (fromLibraries.includes(target.name)) {
      throw new PlexusError('E_INVALID', `copy ${from.copy} of job ${jobId} is on library ${target.name} itself: a second copy goes to another library`);
    }
    const lock = target.tryClaimCopy(jobId);
    if (!lock) throw new PlexusError('E_BUSY', `a copy of job ${jobId} into library ${target.name} is running already`);
    held.push(lock);
    const locations = catalog.locations(jobId);
    const done = locations.find((l) => l.library === target.name && l.status === 'done');
    if (done) throw new PlexusError('E_EXISTS', `job ${jobId} has a copy in library ${target.name} already (copy ${done.copy})`);
    // A copy still `writing` was killed (this process holds the copy's claim now).
    for (const l of locations) if (l.library === target.name && l.status === 'writing') catalog.setLocationStatus(l.id, 'failed');
    const copyNo = Math.max(0, ...locations.map((l) => l.copy)) + 1;

    // The source: a drive of each library it lies on, and every cartridge of it.
    for (const name of fromLibraries) {
      const lib = Library.open(home, name);
      const claim = await lib.claimDrive({ signal: opts.signal, onWait: () => log(`waiting for a drive of library ${lib.name}`) });
      held.push(claim);
      const barcodes = [...new Set(from.segments.filter((s) => s.library === name).map((s) => s.barcode))];
      for (const b of barcodes) {
        let l = lib.tryClaimCartridge(b);
        if (!l) {
          log(`waiting for cartridge ${b} of library ${lib.name}: another job has it loaded`);
          l = await lib.claimCartridge(b, opts.signal);
        }
        held.push(l);
      }
      claim.setLoaded(barcodes[0] ?? null);
    }
    const files = new Map(fromLibraries.map((n) => [n, Library.open(home, n)]));
    source = TapeSource.open(
      `job ${jobId} copy ${from.copy}`,
      job.targetSize,
      from.segments.map((s) => ({
        path: files.get(s.library)!.cartridgeFile(s.barcode),
        file: s.fileNumber,
        firstBlock: s.firstBlock,
        sourceOffset: s.sourceOffset,
        length: s.length,
        digest: s.checksum,
      })),
    );

    const claim = await target.claimDrive({
      signal: opts.signal,
      timeoutMs: opts.driveTimeoutMs,
      unavailable: () => unavailableDrives(catalog, home, target),
      onWait: () => log(`every drive of library ${target.name} is busy; waiting for one`),
    });
    held.push(claim);
    const info: CartridgeIndexEntry['job'] = {
      id: job.id,
      target: job.target,
      targetSize: job.targetSize,
      mode: job.mode,
      startedAt: job.startedAt,
      dataTime: job.dataTime,
      consistency: job.consistency,
    };
    const location = { copy: copyNo, seq: 0, library: target.name, stream: 0 };
    const locId = catalog.addLocation(jobId, location);
    log(`reading copy ${from.copy} (${fromLibraries.join(', ')}) into copy ${copyNo} on library ${target.name}`);
    const writer = new StreamWriter({
      catalog,
      volume: source,
      lib: target,
      claim,
      job: info,
      location: { id: locId, ...location },
      countBytes: false,
      onProgress: (d) => opts.onProgress?.({ operation: 'copy', done: d, total: job.targetSize }),
      onLog: log,
      signal: opts.signal,
    });
    const outcome = await writer.run(copyCommands(from.segments, target.config.blockSize));
    catalog.setLocationStatus(locId, outcome.error ? 'failed' : 'done');
    if (outcome.error) {
      const e = outcome.error;
      throw new PlexusError(e.code, `copy of job ${jobId} into library ${target.name} failed: ${e.message}`, { cause: e });
    }
    return {
      job: jobId,
      target: job.target,
      fromCopy: from.copy,
      fromLibraries,
      sourceCartridges: [...new Set(from.segments.map((s) => s.barcode))],
      copy: copyNo,
      library: target.name,
      drive: driveName(target.name, claim.drive),
      cartridges: outcome.cartridges,
      bytes: outcome.bytes,
      segments: outcome.segments,
      elapsedMs: Date.now() - started,
    };
  } finally {
    try {
      source?.close();
    } finally {
      releaseAll(held);
      catalog.close();
    }
  }
}
