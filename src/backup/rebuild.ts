/**
 * Catalog rebuild: the jobs, location entries and segments are recreated from the
 * catalog files every cartridge carries after each of its segments.
 */

import { Catalog } from '../catalog/catalog.js';
import { asPlexusError, guarded, isBug, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { TapeDrive } from '../tape/drive.js';
import { Library } from '../tape/library.js';
import { type CartridgeIndexEntry, decodeIndex } from './cartridge-index.js';
import { weakest } from './consistency.js';
import { inspect, register } from './libraries.js';

/** What a rebuild found. */
export interface RebuildReport {
  libraries: string[];
  cartridges: number;
  jobs: number;
  segments: number;
  /** Cartridges that could not be read, with why. */
  problems: string[];
}

/** Options of a rebuild. */
export interface RebuildOptions {
  /** Scan only this library: the catalog's rows of other libraries are kept as they are. */
  library?: string;
  onLog?: (line: string) => void;
  /** Cancels the scan (E_CANCELLED); the catalog is then left unchanged. */
  signal?: AbortSignal;
}

/** E_BUSY while a backup job runs: a rebuild would delete or replace its rows under it. */
function refuseWhileRunning(catalog: Catalog): void {
  const running = catalog.jobs({ status: 'running' });
  if (running.length > 0) {
    throw new PlexusError(
      'E_BUSY',
      `backup job${running.length === 1 ? '' : 's'} ${running.map((j) => j.id).join(', ')} ${running.length === 1 ? 'is' : 'are'} running; rebuild the catalog when ${running.length === 1 ? 'it ends' : 'they end'}`,
    );
  }
}

function cancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new PlexusError('E_CANCELLED', 'catalog rebuild cancelled: the catalog is unchanged');
}

/**
 * Recreates the catalog's jobs from the cartridges of every library, or of one. A full
 * rebuild replaces every job, location entry and segment with what the cartridges hold.
 * A scoped rebuild (`library`) touches only what it scanned: it replaces the location
 * entries and segments of that library, keeps every other library's rows (a job with
 * parts on both keeps the parts it did not scan), adds the jobs only found there, and
 * re-derives the status and bytes of the jobs it touched. Either way only the rows of
 * cartridges read through are replaced: a cartridge that is missing or cannot be read
 * keeps the rows the catalog has about it (and is reported among the problems), so a
 * job is never forgotten for a cartridge that could not be scanned. The scan comes first, the
 * catalog is written in one transaction at the end: a cancelled or failed rebuild leaves
 * it as it was.
 */
export function rebuildCatalog(home: Home, opts: RebuildOptions = {}): Promise<RebuildReport> {
  return guarded(() => rebuild(home, opts));
}

async function rebuild(home: Home, opts: RebuildOptions): Promise<RebuildReport> {
  const libs = opts.library !== undefined ? [Library.open(home, opts.library)] : Library.list(home);
  if (libs.length === 0) throw new PlexusError('E_NOENT', 'there is no tape library to rebuild the catalog from');
  // Refused before the scan (which may take minutes) and again inside the transaction
  // that writes the rows (a job may have started meanwhile); the catalog is not held
  // open across the scan, so other commands are not kept waiting on it.
  const first = Catalog.open(home);
  try {
    refuseWhileRunning(first);
  } finally {
    first.close();
  }
  const entries: CartridgeIndexEntry[] = [];
  const problems: string[] = [];
  // Cartridges read through without a problem: the catalog's rows about them are replaced.
  const read = new Set<string>();
  // Cartridges read in part (some catalog file was unreadable): the catalog's rows are
  // kept, and only segment files it has no row of are added from them.
  const partial = new Set<string>();
  let cartridges = 0;
  for (const lib of libs) {
    for (const c of lib.config.cartridges) {
      cancelled(opts.signal);
      if (!lib.present(c.barcode)) {
        problems.push(`${c.barcode}: missing from library ${lib.name}; the catalog keeps what it recorded about it`);
        continue;
      }
      let faults = 0;
      // A cartridge a job has loaded is waited for; Ctrl-C ends the wait.
      let lock = lib.tryClaimCartridge(c.barcode);
      if (!lock) {
        opts.onLog?.(`waiting for cartridge ${c.barcode} of library ${lib.name}: another job has it loaded`);
        lock = await lib.claimCartridge(c.barcode, opts.signal).catch((err: unknown) => {
          cancelled(opts.signal);
          throw err;
        });
      }
      try {
        const tape = TapeDrive.load(lib.cartridgeFile(c.barcode), true);
        try {
          cartridges++;
          const files = tape.files();
          for (const f of files) {
            if (f.content !== 'catalog') continue;
            const where = `cartridge ${c.barcode}, file ${f.file}`;
            try {
              const es = decodeIndex(tape.readFile(f.file), where);
              const file = es[0]!.segment.fileNumber;
              const data = files.find((x) => x.file === file);
              // The rows only count if the chunks they describe fill a segment file of this cartridge.
              const whole = es.every((e) => e.segment.barcode === c.barcode && e.segment.fileNumber === file) && es.reduce((a, e) => a + e.segment.length, 0) === data?.bytes;
              if (data?.content !== 'segment' || !whole) {
                problems.push(`${where}: describes a segment this cartridge does not hold`);
                faults++;
                continue;
              }
              // A cartridge of library L only holds location entries of L.
              entries.push(...es.map((e) => ({ ...e, location: { ...e.location, library: lib.name } })));
            } catch (err) {
              if (isBug(err)) throw err;
              problems.push(`${where}: ${(err as Error).message}`);
              faults++;
            }
          }
        } finally {
          tape.unload();
        }
        (faults === 0 ? read : partial).add(c.barcode);
      } catch (err) {
        if (isBug(err)) throw asPlexusError(err);
        problems.push(`${c.barcode}: ${(err as Error).message}; the catalog keeps what it recorded about it`);
      } finally {
        lock.release();
      }
    }
  }

  cancelled(opts.signal);
  const catalog = Catalog.open(home);
  try {
    let jobs = 0;
    const scan: ScannedCartridges = {
      libraries: libs.map((l) => l.name),
      scoped: opts.library !== undefined,
      entries,
      read,
      partial,
      barcodes: libs.flatMap((l) => l.config.cartridges.map((c) => c.barcode)),
    };
    catalog.transaction(() => {
      cancelled(opts.signal);
      refuseWhileRunning(catalog);
      jobs = rebuildRows(catalog, scan, problems, () => {
        for (const lib of libs) {
          register(catalog, lib, false);
          for (const c of lib.config.cartridges) {
            // A cartridge that cannot be read (a problem above) keeps its media row.
            if (!read.has(c.barcode) && !partial.has(c.barcode) && lib.present(c.barcode)) continue;
            catalog.putMedia(inspect(lib, c.barcode, c.slot));
          }
        }
      });
    });
    return { libraries: libs.map((l) => l.name), cartridges, jobs, segments: entries.length, problems };
  } finally {
    catalog.close();
  }
}

/** What a rebuild's scan found, for rebuildRows. */
export interface ScannedCartridges {
  /** The libraries scanned. */
  libraries: readonly string[];
  /** A scoped rebuild (`--library`): the rows of other libraries are kept. */
  scoped: boolean;
  /** The catalog rows the cartridges carry. */
  entries: readonly CartridgeIndexEntry[];
  /** Cartridges read through (their rows are replaced) and read in part (rows kept, missing files added). */
  read: ReadonlySet<string>;
  partial: ReadonlySet<string>;
  /** Every cartridge of the scanned libraries (a full rebuild drops the rows of any other). */
  barcodes: readonly string[];
}

/**
 * The catalog phase of a rebuild, inside the caller's write transaction: drops the rows
 * of the cartridges read through, calls `putMedia` (the media rows must exist before
 * segments name them), inserts what the cartridges carry and re-derives each touched
 * job; returns how many jobs remain touched. In a scoped rebuild every statement finds
 * its rows through an index (locations_by_library, segments_by_barcode,
 * media's (library, slot), segments' (location_id, seq)), so its cost follows the
 * scanned cartridges and their jobs, not the size of the catalog (`plexus bench catalog`).
 */
export function rebuildRows(catalog: Catalog, scan: ScannedCartridges, problems: string[], putMedia: () => void): number {
  let jobs = 0;
  const scanned = scan.libraries;
  // The jobs the scanned rows belonged to (every job, in a full rebuild), before they are replaced.
  const touched = new Set(!scan.scoped ? catalog.jobs().map((j) => j.id) : [...catalog.jobsWithLocationsOn(scanned), ...scanned.flatMap((l) => catalog.jobsOnLibrary(l))]);
  // Only the rows of cartridges read through are replaced; those of cartridges that
  // are missing or could not be read (in whole or in part) are kept. A full rebuild
  // also drops the rows of cartridges no library holds any more.
  catalog.dropSegmentsOn([...scan.read]);
  if (!scan.scoped) catalog.dropSegmentsNotOn(scan.barcodes);
  catalog.dropEmptyLocations(scan.scoped ? scanned : undefined);
  const fromPartial = new Set(scan.entries.filter((e) => scan.partial.has(e.segment.barcode) && catalog.hasSegmentsIn(e.segment.barcode, e.segment.fileNumber)));
  putMedia();
  const byJob = new Map<number, CartridgeIndexEntry[]>();
  for (const e of scan.entries) {
    if (fromPartial.has(e)) continue;
    const list = byJob.get(e.job.id);
    if (list) list.push(e);
    else byJob.set(e.job.id, [e]);
  }
  for (const [id, es] of [...byJob].sort((a, b) => a[0] - b[0])) {
    const j = es[0]!.job;
    let existing = catalog.findJob(id);
    if (existing && existing.status !== 'running' && (existing.target !== j.target || existing.startedAt !== j.startedAt) && catalog.segments(id).length === 0) {
      // Nothing the catalog recorded of that job is left: the cartridges' job replaces it.
      catalog.deleteJob(id);
      existing = undefined;
    }
    if (existing && (existing.target !== j.target || existing.startedAt !== j.startedAt)) {
      problems.push(
        `job ${id} on the cartridges (${j.target}, started ${j.startedAt}) is not the catalog's job ${id} (${existing.target}, started ${existing.startedAt}): its ${es.length} segments are left out`,
      );
      continue;
    }
    if (!existing) {
      catalog.restoreJob({
        id,
        target: j.target,
        targetSize: j.targetSize,
        mode: j.mode,
        startedAt: j.startedAt,
        endedAt:
          es
            .map((e) => e.segment.writtenAt)
            .sort()
            .at(-1) ?? null,
        dataTime: j.dataTime,
        status: 'incomplete',
        pid: null,
        bytes: 0,
        error: null,
        scheduleId: null,
        // The weakest claim of its cartridges; 'unknown' from cartridges that do not say.
        consistency: weakest(es.map((e) => e.job.consistency)),
      });
    }
    touched.add(id);
    const sorted = [...es].sort((a, b) => a.location.copy - b.location.copy || a.location.seq - b.location.seq || a.segment.seq - b.segment.seq);
    // One lookup per location entry, not per segment.
    const locs = new Map<string, number>();
    for (const e of sorted) {
      const key = `${e.location.copy}/${e.location.seq}`;
      let loc = locs.get(key);
      if (loc === undefined) {
        loc = catalog.findLocation(id, e.location.copy, e.location.seq)?.id ?? catalog.addLocation(id, { ...e.location, status: 'failed' });
        locs.set(key, loc);
      }
      catalog.putSegment(loc, e.segment);
    }
  }
  // Status, bytes and location states follow from every segment the catalog now holds.
  for (const id of touched) {
    const segs = catalog.segments(id);
    const job = catalog.findJob(id);
    if (!job) continue;
    if (segs.length === 0 && job.status !== 'running') {
      catalog.deleteJob(id);
      continue;
    }
    jobs++;
    const pieces = segs.map((s) => ({ copy: s.copy, sourceOffset: s.sourceOffset, length: s.length }));
    for (const l of catalog.locations(id)) {
      if (!scanned.includes(l.library)) continue;
      catalog.setLocationStatus(
        l.id,
        coversAll(
          pieces.filter((p) => p.copy === l.copy),
          job.targetSize,
        )
          ? 'done'
          : 'failed',
      );
    }
    const complete = copiesComplete(pieces, job.targetSize);
    const status = complete ? 'done' : job.status === 'failed' ? 'failed' : 'incomplete';
    const error = complete ? null : job.status === 'failed' && job.error ? job.error : 'rebuilt from cartridges: not every byte of the source was found';
    catalog.setRebuiltJob(id, { status, bytes: copyBytes(pieces), error });
  }
  return jobs;
}

/** A segment's place in its job: which copy, and which bytes of the source. */
interface Piece {
  copy: number;
  sourceOffset: number;
  length: number;
}

/** The bytes of the job's fullest copy (parallel jobs write several). */
function copyBytes(pieces: readonly Piece[]): number {
  const per = new Map<number, number>();
  for (const p of pieces) per.set(p.copy, (per.get(p.copy) ?? 0) + p.length);
  return Math.max(0, ...per.values());
}

/** Whether the pieces (of one copy) cover the whole source. */
function coversAll(pieces: readonly Piece[], size: number): boolean {
  let at = 0;
  for (const p of [...pieces].sort((a, b) => a.sourceOffset - b.sourceOffset)) if (p.sourceOffset <= at) at = Math.max(at, p.sourceOffset + p.length);
  return at >= size;
}

/** Whether some copy of the job has segments covering the whole source. */
function copiesComplete(pieces: readonly Piece[], size: number): boolean {
  return [...new Set(pieces.map((p) => p.copy))].some((copy) =>
    coversAll(
      pieces.filter((p) => p.copy === copy),
      size,
    ),
  );
}
