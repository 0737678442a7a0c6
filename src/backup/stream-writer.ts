/**
 * One backup stream at work: a drive of a library writing segment commands to
 * cartridges, one after another, and recording each cartridge's chunks in the catalog
 * once they are durable. Every backup mode runs on it: a single-stream backup is one
 * writer with one command per cartridge; parallel mode runs a writer per stream with
 * the same commands; chunked mode moves what one writer could not write to the next.
 *
 * A cartridge's chunks share one open segment file. When the cartridge reaches early
 * warning the file is closed — synced, its filemark and a catalog file describing its
 * chunks written behind it — in the background while the next cartridge is written,
 * as a real drive's immediate UNLOAD lets the library mount the next tape while the
 * last one rewinds. The cartridge stays locked, and its chunks out of the catalog,
 * until its close has completed; cartridges are recorded in order.
 */
import type { Catalog, NewSegment } from '../catalog/catalog.js';
import { asPlexusError, PlexusError } from '../errors.js';
import type { EffectiveFault } from '../resources/faults.js';
import type { CartridgeLock } from '../resources/streams.js';
import { diskFull, newDiskCartridge } from '../tape/disk-media.js';
import { type ChunkWritten, type SegmentCommand, type StreamFault, TapeDrive } from '../tape/drive.js';
import type { DriveClaim, Library } from '../tape/library.js';
import type { TapeSource } from '../tape/source.js';
import type { Volume } from '../volumes/volume.js';
import { type CartridgeIndexEntry, encodeIndex, INDEX_FORMAT } from './cartridge-index.js';
import { inspect } from './libraries.js';

/**
 * Closes that may run behind the drive. The disk, not the writer, sets the pace: a
 * close (mostly the sync of its segment) takes longer than writing the next segment
 * into the page cache, so with one close in flight the writer would wait and the disk
 * idle once it had drained. Two keep a cartridge's worth of data queued for the disk.
 */
const MAX_CLOSING = 2;

/** What a stream writes for, and where. */
export interface StreamSetup {
  catalog: Catalog;
  /** What is written: a volume, or another copy of a job read from its cartridges (`backup copy`). */
  volume: Volume | TapeSource;
  lib: Library;
  claim: DriveClaim;
  /** A cartridge claimed for the stream beforehand (`secureStreams`), written first; its lock is not the writer's to free. */
  first?: { barcode: string; lock: CartridgeLock };
  /** The job as the cartridges' catalog files describe it. */
  job: CartridgeIndexEntry['job'];
  /** The location entry the chunks are recorded under. */
  location: { id: number } & CartridgeIndexEntry['location'];
  /** Whether the chunks count into the job's bytes (one copy of a job does). */
  countBytes: boolean;
  /** A command must complete within this many milliseconds. */
  timeoutMs?: number;
  /** The stream's injected fault (`plexus fault inject`), counted over its bytes. */
  fault?: EffectiveFault;
  /** Bytes of this stream's commands written so far. */
  onProgress?: (done: number) => void;
  onLog?: (line: string) => void;
  signal?: AbortSignal;
}

/** How a stream's run ended. */
export interface StreamOutcome {
  /** Undefined when every command was written and recorded. */
  error?: PlexusError;
  /** Bytes recorded in the catalog. */
  bytes: number;
  /** Catalog rows written. */
  segments: number;
  /** Cartridges loaded, in order. */
  cartridges: string[];
  /** Commands (or their rests) not recorded: what another stream must still write. */
  remaining: SegmentCommand[];
  /**
   * The copy device got stuck in a command (a system call no cancellation reached):
   * its native worker was left behind with this cartridge, whose chunks of that run
   * are lost (they are among `remaining`). The device and drive must leave service.
   */
  stuck?: { cartridge: string };
}

/** A cartridge loaded in the stream's drive (or still closing after it left it). */
interface Loaded {
  tape: TapeDrive;
  barcode: string;
  /** Chunks written to its open segment file. */
  chunks: ChunkWritten[];
  /** Unloads it and frees its lock (unless the stream owns it); once only. */
  release: () => void;
}

/** A cartridge's segment being closed on a native thread. */
interface Closing {
  done: Promise<unknown>;
  /** Settles once this close and every earlier one completed and their chunks are recorded. */
  recorded: Promise<void>;
}

/** The commands, or rests of them, that the recorded chunks (in order) do not cover. */
export function notCovered(commands: readonly SegmentCommand[], chunks: readonly ChunkWritten[]): SegmentCommand[] {
  const out: SegmentCommand[] = [];
  let ci = 0;
  for (const cmd of commands) {
    let at = cmd.sourceOffset;
    while (ci < chunks.length && chunks[ci]!.id === cmd.id && chunks[ci]!.sourceOffset === at) at += chunks[ci++]!.length;
    const end = cmd.sourceOffset + cmd.length;
    if (at < end) out.push({ id: cmd.id, sourceOffset: at, length: end - at });
  }
  return out;
}

/** A stream's writer. Use once: `run` then read the outcome. */
export class StreamWriter {
  private loaded: Loaded | undefined;
  /** The next cartridge, claimed and loaded while the current one is written (`prepare`). */
  private prepared: Loaded | undefined;
  private readonly held = new Set<Loaded>();
  private readonly closings: Closing[] = [];
  private recordedAll: Promise<void> = Promise.resolve();
  private closeFailure: unknown;
  private readonly stop = new AbortController();
  private readonly signal: AbortSignal;
  private readonly recorded: ChunkWritten[] = [];
  private readonly cartridges: string[] = [];
  private firstUsed = false;
  private stuck: { cartridge: string } | undefined;
  private delivered = 0;
  /** Catalog rows recorded, and the number the next row to close gets. */
  private rows = 0;
  private nextSeq = 0;

  constructor(private readonly s: StreamSetup) {
    this.signal = s.signal ? AbortSignal.any([s.signal, this.stop.signal]) : this.stop.signal;
  }

  /** Writes `commands` in order; never throws: a failure is the outcome's `error`. */
  async run(commands: readonly SegmentCommand[]): Promise<StreamOutcome> {
    let queue = [...commands];
    let error: PlexusError | undefined;
    try {
      while (queue.length > 0) {
        if (this.closeFailure) throw this.closeFailure;
        if (this.s.signal?.aborted) throw new PlexusError('E_CANCELLED', `backup job ${this.s.job.id} cancelled`);
        this.loaded ??= await this.load();
        const cart = this.loaded;
        const base = this.delivered;
        // Asked before the command starts: the drive is the copy device's while it runs.
        const switches = this.willSwitch(cart, queue);
        const running = cart.tape.executeCommands(this.s.volume, queue, {
          timeoutMs: this.s.timeoutMs,
          fault: this.fault(),
          faultBase: base,
          signal: this.signal,
          onProgress: (e) => this.s.onProgress?.(base + e.done),
        });
        // The command runs on a native thread from here: the file work a cartridge
        // switch needs is done now, behind the write, not between two cartridges.
        const aside = this.whileWriting(cart, switches);
        const r = await running;
        if (r.stuck) {
          // The worker still holds this cartridge (its descriptor, hence its flock):
          // nothing of it can be closed or recorded, and it is not unloaded here. Its
          // lock is kept for the life of the process; the chunks go to another stream.
          this.loaded = undefined;
          this.held.delete(cart);
          if (this.s.claim.loaded === cart.barcode) this.s.claim.setLoaded(null);
          this.stuck = { cartridge: cart.barcode };
          error = new PlexusError(
            r.stop?.code ?? 'E_TIMEOUT',
            `${r.stop?.message ?? 'a segment command hung'}; it did not return when cancelled (stuck in a system call): the device was given up with cartridge ${cart.barcode}`,
          );
          break;
        }
        cart.chunks.push(...r.completed);
        this.delivered += r.completed.reduce((a, c) => a + c.length, 0);
        queue = r.remaining;
        if (aside !== undefined) throw aside;
        if (!r.stop) break;
        if (r.stop.reason === 'early-warning') {
          this.s.onLog?.(`${cart.barcode} reached early warning; closing it while the next cartridge is written`);
          await this.startClose(cart, true);
          this.loaded = undefined;
          continue;
        }
        // A failed or hung command: what completed before it stays and is recorded.
        error = this.closeFailure ? asPlexusError(this.closeFailure) : new PlexusError(r.stop.code, r.stop.message);
        break;
      }
      if (this.loaded) {
        const cart = this.loaded;
        this.loaded = undefined;
        await this.startClose(cart, undefined);
      }
      await this.recordedAll;
    } catch (e) {
      // The first failure is the one to report: a command's stop, else a failed
      // background close (which cancelled the write running meanwhile), else this one.
      error ??= asPlexusError(this.closeFailure ?? e);
      await this.cleanUp();
    } finally {
      this.dropPrepared();
    }
    if (error?.code === 'E_NOSPC' && this.s.lib.kind === 'disk' && !error.message.includes(this.s.lib.cartridgeDir)) error = diskFull(this.s.lib, error);
    const bytes = this.recordedBytes();
    this.s.onProgress?.(bytes);
    return { error, bytes, segments: this.rows, cartridges: this.cartridges, remaining: notCovered(commands, this.recorded), ...(this.stuck ? { stuck: this.stuck } : {}) };
  }

  private recordedBytes(): number {
    return this.recorded.reduce((a, c) => a + c.length, 0);
  }

  /** The stream's fault, its byte counts over the whole stream. */
  private fault(): StreamFault | undefined {
    const f = this.s.fault;
    if (!f || (f.failAfterBytes === null && !f.hang && f.stuckAfterBytes === undefined)) return undefined;
    return { failAfter: f.failAfterBytes ?? undefined, hangAfter: f.hang ? (f.hangAfterBytes ?? 0) : undefined, stuckAfter: f.stuckAfterBytes };
  }

  /** Loads the stream's own cartridge first, then the one prepared, else the next with room. */
  private async load(): Promise<Loaded> {
    const { lib, claim } = this.s;
    let cart: Loaded | undefined;
    if (this.s.first && !this.firstUsed) {
      this.firstUsed = true;
      cart = this.mount(this.s.first.barcode, null);
    }
    if (!cart && this.prepared) {
      cart = this.prepared;
      this.prepared = undefined;
    }
    cart ??= await this.loadNext();
    this.held.add(cart);
    this.cartridges.push(cart.barcode);
    this.s.onLog?.(`loaded ${cart.barcode} in drive ${claim.drive} of library ${lib.name}`);
    return cart;
  }

  /**
   * Whether `queue` certainly outgrows `cart` (its payload alone passes early warning),
   * so the stream will need another cartridge. Block headers and filemarks may make
   * it switch a little earlier; that rare switch loads the next cartridge in place.
   */
  private willSwitch(cart: Loaded, queue: readonly SegmentCommand[]): boolean {
    if (this.prepared) return false;
    const space = cart.tape.space();
    return queue.reduce((a, c) => a + c.length, 0) > space.earlyWarningAt - space.used;
  }

  /**
   * Work for the JavaScript thread while `cart` is being written: records it as the
   * drive's cartridge, and when the stream will switch, prepares the next cartridge
   * (chooses, claims and loads it at its end of data; its label and headers are read
   * now, not at the switch), so the switch only swaps handles. Returns a failure of
   * the drive record (the command is cancelled), never throws.
   */
  private whileWriting(cart: Loaded, switches: boolean): unknown {
    try {
      if (this.s.claim.loaded !== cart.barcode) this.s.claim.setLoaded(cart.barcode);
    } catch (e) {
      this.stop.abort();
      return e;
    }
    if (switches && !this.signal.aborted) {
      try {
        this.prepared = this.nextWithRoom() ?? undefined;
      } catch {
        // Left to the switch, which meets the same failure and reports it in order.
      }
    }
    return undefined;
  }

  /** Unloads and frees a prepared cartridge the stream did not need (finished, failed, cancelled). */
  private dropPrepared(): void {
    const p = this.prepared;
    this.prepared = undefined;
    try {
      p?.release();
    } catch {
      // Its lock goes with the drive object; nothing was written to it.
    }
  }

  /** Loads `barcode` (locked by `lock`, or by the stream when null) at its end of data. */
  private mount(barcode: string, lock: CartridgeLock | null): Loaded | undefined {
    const { lib, claim, catalog } = this.s;
    let tape: TapeDrive;
    try {
      tape = TapeDrive.load(lib.cartridgeFile(barcode), false);
      tape.spaceToEod();
    } catch (e) {
      lock?.release();
      throw e;
    }
    const space = tape.space();
    if (space.inEarlyWarning) {
      catalog.setMedia(barcode, 'full', space.dataBytes);
      tape.unload();
      lock?.release();
      return undefined;
    }
    let released = false;
    return {
      tape,
      barcode,
      chunks: [],
      release: () => {
        if (released) return;
        released = true;
        try {
          tape.unload();
        } finally {
          // A cartridge that closed in the background has left the drive already.
          if (claim.loaded === barcode) claim.setLoaded(null);
          lock?.release();
        }
      },
    };
  }

  /**
   * Loads the next cartridge with room into the drive: the catalog's filling or
   * scratch cartridges by slot, skipping any another job holds. Waits while every
   * cartridge with room is in use; E_NOSPC when none has room.
   */
  private async loadNext(): Promise<Loaded> {
    const { lib } = this.s;
    let told = false;
    for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
      const cart = this.nextWithRoom();
      if (cart === null) {
        throw new PlexusError('E_NOSPC', `library ${lib.name} has no cartridge with free space left (${lib.config.slots} slots)`);
      }
      if (cart) return cart;
      if (!told) {
        this.s.onLog?.(`waiting for a cartridge of library ${lib.name} (all with room are in use)`);
        told = true;
      }
      await new Promise((r) => setTimeout(r, delay));
      if (this.signal.aborted) throw new PlexusError('E_CANCELLED', 'backup cancelled while waiting for a cartridge');
    }
  }

  /**
   * One look for a cartridge with room: the catalog's filling or scratch cartridges by
   * slot, skipping any another job (or this stream) holds, loaded at its end of data.
   * Undefined when every one with room is in use; null when none has room. A disk
   * library never says either: it formats a new cartridge instead.
   */
  private nextWithRoom(): Loaded | undefined | null {
    const { catalog, lib } = this.s;
    const candidates = catalog.media(lib.name).filter((m) => m.state === 'filling' || m.state === 'scratch');
    // Fill partly used cartridges first, so scratch ones stay whole.
    candidates.sort((a, b) => (a.state === b.state ? a.slot - b.slot : a.state === 'filling' ? -1 : 1));
    if (candidates.length === 0) return lib.kind === 'disk' ? this.newCartridge() : null;
    for (const m of candidates) {
      if (!lib.present(m.barcode)) {
        catalog.setMedia(m.barcode, 'missing', m.bytes);
        continue;
      }
      const lock = lib.tryClaimCartridge(m.barcode);
      if (!lock) continue;
      const cart = this.mount(m.barcode, lock);
      if (cart) return cart;
    }
    return lib.kind === 'disk' ? this.newCartridge() : undefined;
  }

  /** A disk library's new scratch cartridge, claimed and loaded. */
  private newCartridge(): Loaded | undefined {
    const { barcode, lock } = newDiskCartridge(this.s.catalog, this.s.lib);
    this.s.onLog?.(`formatted a new cartridge ${barcode} in disk library ${this.s.lib.name}`);
    return this.mount(barcode, lock);
  }

  /**
   * Starts closing `cart`'s segment file (if it holds chunks) with a catalog file of
   * them behind it; once it and the closes before it are done, records its chunks and
   * the cartridge's fill, and unloads it. Waits first while MAX_CLOSING closes run.
   * `full`: the cartridge reached early warning (undefined: as the close finds it).
   */
  private async startClose(cart: Loaded, full: boolean | undefined): Promise<void> {
    if (this.closings.length >= MAX_CLOSING) await this.closings[this.closings.length - MAX_CLOSING]!.recorded.catch(() => undefined);
    // After a failed close nothing more is recorded, so nothing more is closed either:
    // the clean-up drops this cartridge's open file rather than leave chunks on tape
    // that the catalog will never describe (and that another stream writes again).
    if (this.closeFailure) return;
    const { catalog, job, location } = this.s;
    const writtenAt = new Date().toISOString();
    const rows: NewSegment[] = cart.chunks.map((c) => ({
      seq: 0,
      barcode: cart.barcode,
      fileNumber: c.file,
      firstBlock: c.firstBlock,
      sourceOffset: c.sourceOffset,
      length: c.length,
      dataBytes: c.dataBytes,
      checksum: c.digest,
      writtenAt,
    }));
    const failed = (e: unknown): void => {
      this.closeFailure ??= e;
      this.stop.abort();
    };
    const index = (first: number): Buffer =>
      encodeIndex(
        rows.map((segment, i) => ({
          format: INDEX_FORMAT,
          job,
          location: { copy: location.copy, seq: location.seq, library: location.library, stream: location.stream },
          segment: { ...segment, seq: first + i },
        })),
      );
    const firstSeq = this.nextSeq;
    this.nextSeq += rows.length;
    const done: Promise<{ earlyWarning: boolean } | null> = rows.length > 0 ? cart.tape.closeSegment(index(firstSeq)) : Promise.resolve(null);
    done.catch(failed);
    // After an earlier close failed nothing more is recorded: rows stay contiguous.
    const recorded = this.recordedAll.then(async () => {
      const r = await done;
      // The chunks count from here: their filemark and catalog file are synced. One
      // commit for the rows and the cartridge's fill keeps short the window in which a
      // killed job leaves closed chunks the catalog does not know (`catalog rebuild`
      // finds them).
      const space = cart.tape.space();
      catalog.transaction(() => {
        catalog.addSegments(
          job.id,
          location.id,
          rows.map((row, i) => ({ ...row, seq: firstSeq + i })),
          this.s.countBytes,
        );
        catalog.setMedia(cart.barcode, full || r?.earlyWarning || space.inEarlyWarning ? 'full' : 'filling', space.dataBytes);
      });
      this.recorded.push(...cart.chunks);
      this.rows += rows.length;
      this.held.delete(cart);
      cart.release();
    });
    recorded.catch(failed);
    this.recordedAll = recorded;
    this.closings.push({ done, recorded });
  }

  /** After a failure: lets running closes finish, drops any open file, unloads everything. */
  private async cleanUp(): Promise<void> {
    // A close still running holds its drive: let it finish (recording its chunks if it
    // and those before it succeed) before unloading anything.
    await Promise.allSettled(this.closings.flatMap((c) => [c.done, c.recorded]));
    this.loaded = undefined;
    const { catalog, lib } = this.s;
    for (const cart of [...this.held]) {
      // A cartridge keeps only what was closed by a filemark: drop a file left open
      // (unloading would close it), then record what the cartridge holds.
      try {
        cart.tape.abandon();
      } catch {
        // Unloading below still releases it; loading will discard the open file.
      }
      try {
        cart.release();
        this.held.delete(cart);
        catalog.putMedia(inspect(lib, cart.barcode, lib.slotOf(cart.barcode)));
      } catch {
        // The original failure is what the user needs to see.
      }
    }
  }
}
