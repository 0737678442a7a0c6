/**
 * A backup job: a volume written to cartridges of a library, segment by segment. When
 * a cartridge reaches early warning the segment is closed, the cartridge unloaded and
 * the next free one loaded in the same drive: a job spans cartridges. Every segment is
 * recorded in the catalog and, as msgpack, on the cartridge right after its data.
 */
import { Catalog } from '../catalog/catalog.js';
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
  const pair = new PairRecords(`${home.dir}/pairs`).find(source);
  if (pair && isDuplexing(pair.state)) {
    throw new PlexusError('E_STATE', `volume ${source} is the secondary of a pair in ${pair.state}: split the pair first for a consistent image`);
  }
  return pair?.splitAt ?? new Date().toISOString();
}

/** A cartridge loaded in the job's drive. */
interface Loaded {
  tape: TapeDrive;
  release: () => void;
}

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
      return {
        tape,
        release: () => {
          try {
            tape.unload();
          } finally {
            claim.setLoaded(null);
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
    let offset = 0;
    let seq = 0;
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
        if (!loaded) {
          loaded = await loadNext(catalog, lib, claim, opts.signal, opts.onLog);
          cartridges.push(loaded.tape.barcode);
          opts.onLog?.(`job ${job}: loaded ${loaded.tape.barcode} in drive ${claim.drive}`);
        }
        const tape = loaded.tape;
        const base = offset;
        const seg = await tape.writeSegment(volume, offset, size - offset, {
          signal: opts.signal,
          onProgress: (e) => opts.onProgress?.({ ...e, done: base + e.done, total: size }),
        });
        if (seg.bytes > 0) {
          const segment = {
            seq,
            barcode: tape.barcode,
            fileNumber: seg.file,
            firstBlock: 0,
            sourceOffset: offset,
            length: seg.bytes,
            checksum: seg.digest,
            writtenAt: new Date().toISOString(),
          };
          const index = tape.writeFile(
            encodeIndex({
              format: INDEX_FORMAT,
              job: { id: job, target: source, targetSize: size, mode: 'single', startedAt: jobRow.startedAt, dataTime },
              location: { copy: 0, seq: 0, library: lib.name, stream: 0 },
              segment,
            }),
          );
          catalog.addSegment(job, locationId, segment);
          offset += seg.bytes;
          seq++;
          if (index.earlyWarning) seg.earlyWarning = true;
        }
        const full = seg.earlyWarning || seg.endedByEarlyWarning;
        catalog.setMedia(tape.barcode, full ? 'full' : 'filling', tape.space().dataBytes);
        if (full) {
          opts.onLog?.(`job ${job}: ${tape.barcode} reached early warning; unloading`);
          loaded.release();
          loaded = undefined;
        }
      }
      catalog.setLocationStatus(locationId, 'done');
      catalog.finishJob(job, 'done');
    } catch (e) {
      const err = e instanceof PlexusError ? e : new PlexusError('E_IO', (e as Error).message, { cause: e });
      catalog.setLocationStatus(locationId, 'failed');
      catalog.finishJob(job, 'failed', `${err.code}: ${err.message}`);
      // The cartridge keeps only what was closed by a filemark; record what that is.
      const barcode = loaded?.tape.barcode;
      try {
        loaded?.release();
        loaded = undefined;
        if (barcode) catalog.putMedia(inspect(lib, barcode, lib.slotOf(barcode)));
      } catch {
        // The original failure is what the user needs to see.
      }
      throw new PlexusError(err.code, `backup job ${job} of ${source} failed: ${err.message}`, { cause: err });
    } finally {
      try {
        loaded?.release();
      } finally {
        claim?.release();
      }
    }
    return { job, target: source, library: lib.name, bytes: offset, segments: seq, cartridges, waitedForDrive: waited, elapsedMs: Date.now() - started, dataTime };
  } finally {
    catalog.close();
  }
}
