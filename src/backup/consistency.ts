/**
 * What a backup job's data is: a consistent image, or a crash-consistent copy of a live
 * volume. Plexus reads a source block by block while the job runs; only a source that
 * nothing writes meanwhile yields a point-in-time image:
 *
 * - `consistent`: the source is a frozen image: the secondary of a pair split by the
 *   user (PSUS: its data is the primary's as of the split) that nothing wrote since (its
 *   dirty bitmap is clear and its data file is as the split left it), or a staged copy (`pair stage`)
 *   that nothing wrote since it was staged; and its data file did not change while the
 *   job read it (size, mtime and ctime compared before and after);
 * - `crash-consistent`: anything that may be written during the backup (a primary, a
 *   plain volume, a split secondary or a staged copy written since, or a frozen image whose file changed
 *   during the job), and a secondary suspended by a failure (PSUE: it holds what the
 *   duplexed writes left, not an image of one moment): each block is as it was when read, so the whole is what a crash
 *   would have left; every block's checksum still covers exactly the bytes stored;
 * - refused (E_STATE): a secondary still being mirrored, and the secondary of an instant
 *   split whose fill is pending (its data file does not hold the image yet);
 * - `unknown`: jobs recorded before this was tracked, or rebuilt from cartridges
 *   written before it was (treat as crash-consistent).
 *
 * docs/backup-manager.md ("Consistency") describes it for operators.
 */
import { callNative, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { checkDataFileRead } from '../mirror/io.js';
import { type PairRecord, PairRecords } from '../mirror/record.js';
import { isDuplexing } from '../mirror/states.js';
import { native } from '../native/binding.js';
import { type FileStamp, fileStamp, sameStamp, VolumeStore } from '../volumes/store.js';

/** What a job's data is (see the module notes). */
export type Consistency = 'consistent' | 'crash-consistent' | 'unknown';
export const CONSISTENCIES: readonly Consistency[] = ['consistent', 'crash-consistent', 'unknown'];

/** What a source is, as the job starts. */
export interface SourceImage {
  consistency: 'consistent' | 'crash-consistent';
  /** Why, in words, for the report and the catalog. */
  reason: string;
  /** The time the data is as of: the split time of a frozen image, else now. */
  dataTime: string;
  /** The source's data file as the job starts, to compare when it ends. */
  stamp: FileStamp;
}

/** Classifies `source` before a backup reads it, as `host` (default: `hostIdentity()`);
 * E_ACCESS for a secondary whose access list refuses the host, E_STATE for a secondary
 * still being mirrored or an instant split's secondary not filled yet. */
export function classifySource(home: Home, source: string, host?: string): SourceImage {
  const store = new VolumeStore(home);
  // Stamp first: a write after this is seen when the job ends.
  const stamp = fileStamp(store.file(source));
  const now = new Date().toISOString();
  const records = PairRecords.of(home);
  const pair = records.find(source);
  // A backup reads the secondary like any host (its access list holds in every state). An
  // unfilled instant split is refused rather than read through the pair: that would hold
  // the primary's owner lock (writers refused) for the whole job, and nothing stamps the
  // primary's file.
  checkDataFileRead(pair, host, 'back it up');
  if (pair && isDuplexing(pair.state)) {
    throw new PlexusError('E_STATE', `volume ${source} is the secondary of a pair in ${pair.state}: split the pair first for a consistent image`);
  }
  if (pair?.state === 'PSUE') {
    return { consistency: 'crash-consistent', reason: `secondary of ${pair.primary} suspended by a failure (PSUE): not an image of one moment`, dataTime: now, stamp };
  }
  if (pair?.state === 'PSUS' && pair.splitAt) {
    const what = `split secondary of ${pair.primary} (${pair.state}${pair.readOnly ? ', read-only' : ''})`;
    const written = writtenSinceSplit(records, pair, stamp);
    if (written) return { consistency: 'crash-consistent', reason: `${what}, but ${written}`, dataTime: now, stamp };
    return { consistency: 'consistent', reason: `${what}, as of the split`, dataTime: pair.splitAt, stamp };
  }
  const staged = store.staged(source);
  if (staged) {
    if (sameStamp(staged.file, stamp)) return { consistency: 'consistent', reason: `staged copy of ${staged.from}, unchanged since it was staged`, dataTime: staged.dataTime, stamp };
    return { consistency: 'crash-consistent', reason: `staged copy of ${staged.from}, but written since it was staged`, dataTime: now, stamp };
  }
  const primary = records.all().some((r) => r.primary === source);
  return { consistency: 'crash-consistent', reason: primary ? 'live primary volume: may be written during the backup' : 'live volume: may be written during the backup', dataTime: now, stamp };
}

/**
 * Why a split secondary no longer holds the image of its split, or undefined if nothing
 * wrote it since: a write through Plexus marks its dirty bitmap (read without writing,
 * as observers do); a write behind Plexus changes its data file, compared with the stamp
 * the split (or an instant split's fill) recorded. A record from before stamps were kept
 * falls back to the file's mtime against the split time, unless the secondary is read-only.
 */
function writtenSinceSplit(records: PairRecords, pair: PairRecord, stamp: FileStamp): string | undefined {
  let dirty: number;
  try {
    dirty = callNative(() => native.NativeBitmap.readRuns(records.bitmaps(pair.secondary).secondaryDirty)).reduce((a, r) => a + r.length, 0);
  } catch (e) {
    return `its dirty bitmap cannot be read (${(e as Error).message})`;
  }
  if (dirty > 0) return `written since the split (${dirty} bytes recorded in its dirty bitmap)`;
  if (pair.splitStamp) return sameStamp(pair.splitStamp, stamp) ? undefined : 'its data file changed since the split';
  const splitNs = BigInt(Date.parse(pair.splitAt!)) * 1_000_000n;
  if (!pair.readOnly && BigInt(stamp.mtimeNs) > splitNs) return 'its data file was modified after the split';
  return undefined;
}

/** The job's consistency once it has read everything: a frozen image whose data file
 * changed while the job read it is only crash-consistent. */
export function settleConsistency(home: Home, source: string, image: SourceImage): { consistency: SourceImage['consistency']; reason: string } {
  if (image.consistency !== 'consistent') return image;
  let now: FileStamp | undefined;
  try {
    now = fileStamp(new VolumeStore(home).file(source));
  } catch {
    now = undefined;
  }
  if (now && sameStamp(now, image.stamp)) return image;
  return { consistency: 'crash-consistent', reason: `${image.reason}, but its data file changed during the backup` };
}

/** Combines what several cartridges say about one job: the weakest claim wins. */
export function weakest(values: ReadonlyArray<Consistency | undefined>): Consistency {
  if (values.some((v) => v === undefined || v === 'unknown' || !(CONSISTENCIES as readonly unknown[]).includes(v))) return 'unknown';
  return values.some((v) => v === 'crash-consistent') ? 'crash-consistent' : 'consistent';
}
