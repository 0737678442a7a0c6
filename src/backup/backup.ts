/**
 * A backup job: a volume written to cartridges of a library, segment by segment. When
 * a cartridge reaches early warning the rest goes on the next free one, loaded in the
 * same drive: a job spans cartridges. Every segment is recorded in the catalog and, as
 * msgpack, on the cartridge right after its data.
 *
 * Closing a full cartridge (syncing its segment, the filemarks, the catalog file) runs
 * in the background while the next one is written, as a real drive's immediate UNLOAD
 * lets the library mount the next tape while the last one rewinds: otherwise every
 * cartridge change would stall the job for the time the disk takes to drain the
 * segment. The cartridge stays locked, and its segment out of the catalog, until its
 * close has completed; segments are recorded in order.
 */
import { Catalog, type NewSegment } from '../catalog/catalog.js';
import { PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { PairRecords } from '../mirror/record.js';
import { isDuplexing } from '../mirror/states.js';
import type { ProgressCallback } from '../progress.js';
import { TapeDrive } from '../tape/drive.js';
import { Library, type DriveClaim } from '../tape/library.js';
import { VolumeStore } from '../volumes/store.js';
import { encodeIndex, INDEX_FORMAT } from './cartridge-index.js';
import { inspect, register } from './libraries.js';

/** Options of a backup run. */
export interface BackupOptions {
  /** Library to write to (default: the only one). */
  library?: string;
  /** Schedule entry that started the job. */
  scheduleId?: number;
  /** Give up waiting for a drive after this long (default: wait for ever). */
  driveTimeoutMs?: number;
  onProgress?: ProgressCallback;
  /** Told about waits and cartridge changes, one line each. */
  onLog?: (line: string) => void;
  signal?: AbortSignal;
}

/** What a backup did. */
export interface BackupReport {
  job: number;
  target: string;
  library: string;
  bytes: number;
  segments: number;
  /** Cartridges written, in order. */
  cartridges: string[];
  /** Whether the job had to wait for a drive. */
  waitedForDrive: boolean;
  elapsedMs: number;
  dataTime: string;
}

/** The library a command means: the one named, or the only one there is. */
export function chooseLibrary(home: Home, name?: string): Library {
  if (name !== undefined) return Library.open(home, name);
  const all = Library.list(home);
  if (all.length === 1) return all[0]!;
  if (all.length === 0) throw new PlexusError('E_NOENT', 'there is no tape library: create one with `plexus library create NAME --slots N --drives N --cartridge-size SIZE`');
  throw new PlexusError('E_INVALID', `there are ${all.length} libraries (${all.map((l) => l.name).join(', ')}): choose one with --library`);
}

/** The time the data of `source` is as of: a split secondary's split time, else now. */
function dataTimeOf(home: Home, source: string): string {
  const pair = PairRecords.of(home).find(source);
  if (pair && isDuplexing(pair.state)) {
    throw new PlexusError('E_STATE', `volume ${source} is the secondary of a pair in ${pair.state}: split the pair first for a consistent image`);
  }
  return pair?.splitAt ?? new Date().toISOString();
}

/** A cartridge loaded in the job's drive (or still closing after it left it). */
interface Loaded {
  tape: TapeDrive;
  barcode: string;
  /** Unloads it and frees its lock; once only. */
  release: () => void;
}

/** A cartridge's last segment being closed on a native thread. */
interface Closing {
  /** Settles when the close does; the drive is busy until then. */
  done: Promise<unknown>;
  /** Settles once this close and every earlier one completed and their segments are recorded. */
  recorded: Promise<void>;
}

/**
 * Closes that may run behind the drive. The disk, not the writer, sets the pace: a
 * close (mostly the sync of its segment) takes longer than writing the next segment
 * into the page cache, so with one close in flight the writer would wait and the disk
 * idle once it had drained. Two keep a cartridge's worth of data queued for the disk.
 */
const MAX_CLOSING = 2;

/**
 * Loads the next cartridge with room into the claimed drive: the catalog's filling or
 * scratch cartridges by slot, skipping any another job holds. Waits while every
 * cartridge with room is in use; E_NOSPC when none has room.
 */
async function loadNext(catalog: Catalog, lib: Library, claim: DriveClaim, signal?: AbortSignal, log?: (l: string) => void): Promise<Loaded> {
  let told = false;
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    const candidates = catalog.media(lib.name).filter((m) => m.state === 'filling' || m.state === 'scratch');
    // Fill partly used cartridges first, so scratch ones stay whole.
    candidates.sort((a, b) => (a.state === b.state ? a.slot - b.slot : a.state === 'filling' ? -1 : 1));
    if (candidates.length === 0) {
      throw new PlexusError('E_NOSPC', `library ${lib.name} has no cartridge with free space left (${lib.config.slots} slots)`);
    }
    for (const m of candidates) {
      if (!lib.present(m.barcode)) {
        catalog.setMedia(m.barcode, 'missing', m.bytes);
        continue;
      }
      const lock = lib.tryClaimCartridge(m.barcode);
      if (!lock) continue;
      let tape: TapeDrive;
      try {
        tape = TapeDrive.load(lib.cartridgeFile(m.barcode), false);
        tape.spaceToEod();
      } catch (e) {
        lock.release();
        throw e;
      }
      if (tape.space().inEarlyWarning) {
        catalog.setMedia(m.barcode, 'full', tape.space().dataBytes);
        tape.unload();
        lock.release();
        continue;
      }
      claim.setLoaded(m.barcode);
      let released = false;
      return {
        tape,
        barcode: m.barcode,
        release: () => {
          if (released) return;
          released = true;
          try {
            tape.unload();
          } finally {
            // A cartridge that closed in the background has left the drive already.
            if (claim.loaded === m.barcode) claim.setLoaded(null);
            lock.release();
          }
        },
      };
    }
    if (!told) (log?.(`waiting for a cartridge of library ${lib.name} (all with room are in use)`), (told = true));
    await new Promise((r) => setTimeout(r, delay));
    if (signal?.aborted) throw new PlexusError('E_CANCELLED', 'backup cancelled while waiting for a cartridge');
  }
}

/** Backs up volume `source` of the home to a library. */
export async function runBackup(home: Home, source: string, opts: BackupOptions = {}): Promise<BackupReport> {
  const started = Date.now();
  const store = new VolumeStore(home);
  const volume = store.open(source, { readOnly: true });
  const size = volume.size;
  const dataTime = dataTimeOf(home, source);
  const lib = chooseLibrary(home, opts.library);
  const catalog = Catalog.open(home);
  try {
    register(catalog, lib);
    const job = catalog.startJob({ target: source, targetSize: size, mode: 'single', dataTime, scheduleId: opts.scheduleId });
    const jobRow = catalog.job(job);
    const locationId = catalog.addLocation(job, { copy: 0, seq: 0, library: lib.name, stream: 0 });
    const cartridges: string[] = [];
    let waited = false;
    let claim: DriveClaim | undefined;
    let loaded: Loaded | undefined;
    // Every cartridge this job has loaded and not yet released: the one in the drive
    // and those closing behind it.
    const held = new Set<Loaded>();
    const closings: Closing[] = [];
    let recordedAll: Promise<void> = Promise.resolve();
    // A failed background close fails the job: it stops the write running meanwhile.
    let closeFailure: unknown;
    const stop = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
    const failed = (e: unknown): void => {
      closeFailure ??= e;
      stop.abort();
    };
    let offset = 0;
    let seq = 0;

    /**
     * Starts closing `cart`'s open segment; once it and the closes before it are done,
     * records `segment` and the cartridge's fill, and unloads it when `unload`.
     */
    const startClose = (cart: Loaded, segment: NewSegment | undefined, full: boolean, unload: boolean): void => {
      const index = segment
        ? encodeIndex({
            format: INDEX_FORMAT,
            job: { id: job, target: source, targetSize: size, mode: 'single', startedAt: jobRow.startedAt, dataTime },
            location: { copy: 0, seq: 0, library: lib.name, stream: 0 },
            segment,
          })
        : null;
      const done = cart.tape.closeSegment(index);
      done.catch(failed);
      // After an earlier close failed nothing more is recorded: rows stay contiguous.
      const recorded = recordedAll.then(async () => {
        const r = await done;
        // The segment counts from here: its filemark and catalog file are synced. One
        // commit for the row and the cartridge's fill keeps short the window in which a
        // killed job leaves a closed segment the catalog does not know (it is skipped
        // as full and `catalog rebuild` finds it).
        const dataBytes = cart.tape.space().dataBytes;
        catalog.transaction(() => {
          if (segment) catalog.addSegment(job, locationId, segment);
          catalog.setMedia(cart.barcode, full || r.earlyWarning ? 'full' : 'filling', dataBytes);
        });
        if (unload) {
          held.delete(cart);
          cart.release();
        }
      });
      recorded.catch(failed);
      recordedAll = recorded;
      closings.push({ done, recorded });
    };

    try {
      claim = await lib.claimDrive({
        signal: opts.signal,
        timeoutMs: opts.driveTimeoutMs,
        onWait: () => {
          waited = true;
          opts.onLog?.(`job ${job}: every drive of library ${lib.name} is busy; waiting for one`);
        },
      });
      while (offset < size) {
        if (opts.signal?.aborted) throw new PlexusError('E_CANCELLED', `backup job ${job} cancelled`);
        if (closeFailure) throw closeFailure;
        if (!loaded) {
          loaded = await loadNext(catalog, lib, claim, signal, opts.onLog);
          held.add(loaded);
          cartridges.push(loaded.barcode);
          opts.onLog?.(`job ${job}: loaded ${loaded.barcode} in drive ${claim.drive}`);
        }
        const cart = loaded;
        const base = offset;
        const seg = await cart.tape.writeSegmentData(volume, offset, size - offset, {
          signal,
          onProgress: (e) => opts.onProgress?.({ ...e, done: base + e.done, total: size }),
        });
        const segment =
          seg.bytes > 0
            ? { seq, barcode: cart.barcode, fileNumber: seg.file, firstBlock: 0, sourceOffset: offset, length: seg.bytes, checksum: seg.digest, writtenAt: new Date().toISOString() }
            : undefined;
        if (closings.length >= MAX_CLOSING) await closings[closings.length - MAX_CLOSING]!.recorded;
        const full = seg.earlyWarning || seg.endedByEarlyWarning;
        startClose(cart, segment, full, full);
        if (segment) {
          offset += seg.bytes;
          seq++;
        }
        if (full) {
          opts.onLog?.(`job ${job}: ${cart.barcode} reached early warning; closing it while the next cartridge is written`);
          loaded = undefined;
        }
      }
      await recordedAll;
      catalog.setLocationStatus(locationId, 'done');
      catalog.finishJob(job, 'done');
    } catch (e) {
      // A write cancelled because a background close failed reports the close's error.
      const first = closeFailure ?? e;
      const err = first instanceof PlexusError ? first : new PlexusError('E_IO', (first as Error).message, { cause: first });
      // A close still running holds its drive: let it finish (recording its segment if
      // it and those before it succeed) before unloading anything.
      await Promise.allSettled(closings.flatMap((c) => [c.done, c.recorded]));
      catalog.setLocationStatus(locationId, 'failed');
      catalog.finishJob(job, 'failed', `${err.code}: ${err.message}`);
      // A cartridge keeps only what was closed by a filemark: drop a segment left open
      // (unloading would close it), then record what each cartridge holds.
      for (const cart of [...held]) {
        try {
          cart.tape.abandon();
        } catch {
          // Unloading below still releases it; loading will discard the open file.
        }
        try {
          cart.release();
          held.delete(cart);
          catalog.putMedia(inspect(lib, cart.barcode, lib.slotOf(cart.barcode)));
        } catch {
          // The original failure is what the user needs to see.
        }
      }
      loaded = undefined;
      throw new PlexusError(err.code, `backup job ${job} of ${source} failed: ${err.message}`, { cause: err });
    } finally {
      try {
        for (const cart of held) cart.release();
      } finally {
        claim?.release();
      }
    }
    return { job, target: source, library: lib.name, bytes: offset, segments: seq, cartridges, waitedForDrive: waited, elapsedMs: Date.now() - started, dataTime };
  } finally {
    catalog.close();
  }
}
