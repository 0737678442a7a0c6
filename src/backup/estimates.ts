/**
 * What the plan works from (001 English, Fig. 19: "calculates the time taken for backup
 * based on the amount of data"): each volume's data and what changed in it, and each
 * library's throughput measured on its past jobs.
 *
 * A backup job is a full image of its volume whose holes are skipped (a thin volume's
 * unwritten regions take a hole record, not data), so the bytes a job moves are the
 * volume's allocated bytes, whatever changed since the last backup. What changed is
 * shown beside them where a dirty bitmap records it (a primary's checkpoint chain,
 * `pair checkpoint`), for the operator; it does not shorten the job.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Catalog } from '../catalog/catalog.js';
import { callNative } from '../errors.js';
import type { Home } from '../home/home.js';
import { PairRecords } from '../mirror/record.js';
import { native } from '../native/binding.js';
import { VolumeStore } from '../volumes/store.js';

/** Assumed when a library has no finished job to measure: 100 MiB/s. */
export const DEFAULT_THROUGHPUT = 100 << 20;
/** Jobs a library's throughput is measured over. */
const MEASURED_JOBS = 10;

/** A volume's data as a plan sees it. */
export interface VolumeData {
  volume: string;
  size: number;
  /** Bytes its data file holds: what a backup moves. */
  allocatedBytes: number;
  /** Dirty bytes of its current checkpoint generation (writes since `pair checkpoint`), or null: no bitmap records its writes. */
  changed: { bytes: number; since: string } | null;
  /** Set when the volume cannot be opened (removed since the policy was made). */
  error?: string;
}

/** A library's throughput, measured or assumed. */
export interface Throughput {
  library: string;
  bytesPerSecond: number;
  /** `measured` over `jobs` recent jobs, or `default` when it has none. */
  source: 'measured' | 'default';
  jobs: number;
}

/** The data of `volume`: size, allocated bytes, and (with `changed`, the default) what its checkpoint chain records as changed. */
export function volumeData(home: Home, volume: string, opts: { changed?: boolean } = {}): VolumeData {
  let info: ReturnType<ReturnType<VolumeStore['open']>['info']>;
  try {
    info = new VolumeStore(home).open(volume, { readOnly: true }).info();
  } catch (e) {
    return { volume, size: 0, allocatedBytes: 0, changed: null, error: (e as Error).message };
  }
  const changed = opts.changed === false ? null : changedBytes(home, volume);
  return { volume, size: info.size, allocatedBytes: Math.min(info.allocatedBytes, info.size), changed };
}

/**
 * Dirty bytes of the current generation of `volume`'s checkpoint chain: the newest
 * `gen-N.bitmap` (generation numbers only grow, and the last is the one recording),
 * read as an observer (nothing written, a torn log tail skipped). Null without a chain,
 * or when it cannot be read now (its owner is rewriting it): the plan says so.
 */
function changedBytes(home: Home, volume: string): VolumeData['changed'] {
  const dir = PairRecords.of(home).checkpointDir(volume);
  let newest = 0;
  try {
    for (const f of fs.readdirSync(dir)) {
      const m = /^gen-(\d+)\.bitmap$/.exec(f);
      if (m) newest = Math.max(newest, Number(m[1]));
    }
  } catch {
    return null;
  }
  if (newest === 0) return null;
  try {
    const runs = callNative(() => native.NativeBitmap.readRuns(path.join(dir, `gen-${newest}.bitmap`)));
    return { bytes: runs.reduce((a, r) => a + r.length, 0), since: `checkpoint ${newest}` };
  } catch {
    return null;
  }
}

/**
 * The throughput of `library`: data bytes over elapsed time of its newest finished jobs
 * (their first copy; whole jobs, so a cartridge change or a wait for a drive counts in),
 * or DEFAULT_THROUGHPUT when it has none.
 */
export function measuredThroughput(catalog: Catalog, library: string): Throughput {
  let bytes = 0;
  let ms = 0;
  let jobs = 0;
  for (const j of catalog.recentJobRates(library, MEASURED_JOBS)) {
    const elapsed = Date.parse(j.endedAt) - Date.parse(j.startedAt);
    if (!(elapsed > 0) || j.dataBytes <= 0) continue;
    bytes += j.dataBytes;
    ms += elapsed;
    jobs++;
  }
  if (jobs === 0) return { library, bytesPerSecond: DEFAULT_THROUGHPUT, source: 'default', jobs: 0 };
  return { library, bytesPerSecond: (bytes / ms) * 1000, source: 'measured', jobs };
}
