/**
 * Catalog rebuild: the jobs, location entries and segments are recreated from the
 * catalog files every cartridge carries after each of its segments.
 */
import { Catalog, type JobRow } from '../catalog/catalog.js';
import { PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { TapeDrive } from '../tape/drive.js';
import { Library } from '../tape/library.js';
import { decodeIndex, type CartridgeIndexEntry } from './cartridge-index.js';
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

/** Recreates the catalog's jobs from the cartridges of every library (or one). */
export async function rebuildCatalog(home: Home, opts: { library?: string; onLog?: (line: string) => void } = {}): Promise<RebuildReport> {
  const libs = opts.library ? [Library.open(home, opts.library)] : Library.list(home);
  if (libs.length === 0) throw new PlexusError('E_NOENT', 'there is no tape library to rebuild the catalog from');
  const entries: CartridgeIndexEntry[] = [];
  const problems: string[] = [];
  let cartridges = 0;
  for (const lib of libs) {
    for (const c of lib.config.cartridges) {
      if (!lib.present(c.barcode)) {
        problems.push(`${c.barcode}: missing from library ${lib.name}`);
        continue;
      }
      const lock = await lib.claimCartridge(c.barcode);
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
                continue;
              }
              entries.push(...es);
            } catch (err) {
              problems.push(`${where}: ${(err as Error).message}`);
            }
          }
        } finally {
          tape.unload();
        }
      } catch (err) {
        problems.push(`${c.barcode}: ${(err as Error).message}`);
      } finally {
        lock.release();
      }
    }
  }

  const catalog = Catalog.open(home);
  try {
    catalog.transaction(() => {
      catalog.clearJobs();
      for (const lib of libs) {
        register(catalog, lib, false);
        for (const c of lib.config.cartridges) catalog.putMedia(inspect(lib, c.barcode, c.slot));
      }
      const byJob = new Map<number, CartridgeIndexEntry[]>();
      for (const e of entries) byJob.set(e.job.id, [...(byJob.get(e.job.id) ?? []), e]);
      for (const [id, es] of [...byJob].sort((a, b) => a[0] - b[0])) {
        const j = es[0]!.job;
        const complete = copiesComplete(es, j.targetSize);
        const row: JobRow = {
          id,
          target: j.target,
          targetSize: j.targetSize,
          mode: j.mode,
          startedAt: j.startedAt,
          endedAt: es.map((e) => e.segment.writtenAt).sort().at(-1) ?? null,
          dataTime: j.dataTime,
          status: complete ? 'done' : 'incomplete',
          pid: null,
          bytes: copyBytes(es),
          error: complete ? null : 'rebuilt from cartridges: not every byte of the source was found',
          scheduleId: null,
        };
        catalog.restoreJob(row);
        const sorted = [...es].sort((a, b) => a.location.copy - b.location.copy || a.location.seq - b.location.seq || a.segment.seq - b.segment.seq);
        for (const e of sorted) {
          // A copy is done if it covers the source (a parallel stream that failed left a partial one).
          const whole = copiesComplete(es.filter((x) => x.location.copy === e.location.copy), j.targetSize);
          const loc =
            catalog.findLocation(id, e.location.copy, e.location.seq)?.id ??
            catalog.addLocation(id, { ...e.location, status: whole ? 'done' : 'failed' });
          catalog.putSegment(loc, e.segment);
        }
      }
    });
    return { libraries: libs.map((l) => l.name), cartridges, jobs: new Set(entries.map((e) => e.job.id)).size, segments: entries.length, problems };
  } finally {
    catalog.close();
  }
}

/** The bytes of the job's fullest copy (parallel jobs write several). */
function copyBytes(es: CartridgeIndexEntry[]): number {
  const per = new Map<number, number>();
  for (const e of es) per.set(e.location.copy, (per.get(e.location.copy) ?? 0) + e.segment.length);
  return Math.max(0, ...per.values());
}

/** Whether some copy of the job has segments covering the whole source. */
function copiesComplete(es: CartridgeIndexEntry[], size: number): boolean {
  for (const copy of new Set(es.map((e) => e.location.copy))) {
    const segs = es.filter((e) => e.location.copy === copy).sort((a, b) => a.segment.sourceOffset - b.segment.sourceOffset);
    let at = 0;
    for (const e of segs) if (e.segment.sourceOffset <= at) at = Math.max(at, e.segment.sourceOffset + e.segment.length);
    if (at >= size) return true;
  }
  return false;
}
