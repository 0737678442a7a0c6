/**
 * A cartridge loaded in a drive: the TypeScript face of the native tape core
 * (crates/tape, docs/tape-format.md). Segment transfers run on native threads.
 */
import { awaitNative, callNative } from '../errors.js';
import { type NativePlex, native } from '../native/binding.js';
import type { ProgressCallback } from '../progress.js';
import { withPolledProgress } from '../progress.js';
import type { Volume } from '../volumes/volume.js';
import { TapeSource } from './source.js';

type NativeDrive = InstanceType<typeof native.NativeDrive>;
type TapeJob = InstanceType<typeof native.TapeJob>;

/** One EXTENDED COPY segment command: `length` bytes of the source from `sourceOffset`. */
export interface SegmentCommand {
  id: number;
  sourceOffset: number;
  length: number;
}

/** A completed command: its chunk is blocks `firstBlock..+blocks` of tape file `file`. */
export interface ChunkWritten extends SegmentCommand {
  file: number;
  firstBlock: number;
  blocks: number;
  /** Bytes of the chunk's data blocks on the cartridge (its holes take none). */
  dataBytes: number;
  /** Digest of the chunk's blocks, 32 hex digits: the catalog's checksum. */
  digest: string;
}

/** Why a copy device stopped early. */
export interface DeviceStop {
  reason: 'early-warning' | 'timeout' | 'error' | 'cancelled';
  /** The command that stopped it. */
  command?: number;
  code: string;
  message: string;
}

/** What a copy device run did. */
export interface CommandsRun {
  completed: ChunkWritten[];
  stop?: DeviceStop;
  /** Commands not done, the one that stopped the device first. */
  remaining: SegmentCommand[];
  /** A segment file is left open: close it with `closeSegment`. */
  open: boolean;
  /**
   * The stopping command never returned from its cancellation (blocked in a system
   * call): the native worker was left behind holding the cartridge, which is no longer
   * loaded here; nothing of this run is durable. Take the device out of service.
   */
  stuck: boolean;
}

/** A tape file as the cartridge lists it. */
export interface TapeFileInfo {
  file: number;
  /** `segment` (backup data) or `catalog` (the rows describing a segment), ... */
  content: string;
  /** Blocks, those hole records stand for included. */
  blocks: number;
  /** Bytes the file reads as, holes included. */
  bytes: number;
  /** Bytes of data blocks on the cartridge (holes take none). */
  dataBytes: number;
}

/** How full a cartridge is. */
export interface TapeSpaceInfo {
  capacity: number;
  used: number;
  /** Where the early-warning zone starts: a write past it reports early warning. */
  earlyWarningAt: number;
  inEarlyWarning: boolean;
  /** Payload bytes of the closed files on the medium (holes take none). */
  dataBytes: number;
}

/** What closing a segment did. */
export interface SegmentClosed {
  /** The segment's tape file, now closed by a synced filemark. */
  file: number;
  /** The catalog file written behind it, if one was given. */
  catalogFile?: number;
  /** The cartridge is now inside its early-warning zone. */
  earlyWarning: boolean;
}

/** A stream's fault acted out on the source (see `plexus fault inject`): reads fail after
 * `failAfter` bytes of the stream, hang after `hangAfter` until the command is cancelled,
 * or block in a system call after `stuckAfter` for good (the run settles as `stuck`). */
export interface StreamFault {
  failAfter?: number;
  hangAfter?: number;
  stuckAfter?: number;
}

/** Options of a transfer. */
export interface TransferOptions {
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** Runs a native tape job with progress and cancellation. */
async function run(job: TapeJob, what: string, opts: TransferOptions) {
  const abort = (): void => job.cancel();
  opts.signal?.addEventListener('abort', abort, { once: true });
  if (opts.signal?.aborted) job.cancel();
  try {
    return await withPolledProgress(what, awaitNative(job.run()), () => job.progress(), opts.onProgress);
  } finally {
    opts.signal?.removeEventListener('abort', abort);
  }
}

/** Cuts `length` bytes of a source from `offset` into segment commands of `chunk` bytes (crates/xcopy). */
export function planSegmentCommands(offset: number, length: number, chunk: number): SegmentCommand[] {
  return callNative(() => native.planSegmentCommands(offset, length, chunk));
}

/** A loaded cartridge. */
export class TapeDrive {
  private constructor(private readonly inner: NativeDrive) {}

  /** Formats a blank cartridge file (label, end of data). */
  static format(file: string, barcode: string, capacity: number, blockSize: number): void {
    callNative(() => native.NativeDrive.format(file, { barcode, capacity, blockSize }).unload());
  }

  /** Loads a cartridge; read-only loads may share it, a writer has it alone (E_BUSY otherwise). */
  static load(file: string, readOnly: boolean): TapeDrive {
    return new TapeDrive(callNative(() => native.NativeDrive.open(file, readOnly)));
  }

  /** Files and fill of a cartridge, read without keeping it loaded. */
  static peek(file: string): { files: number; inEarlyWarning: boolean; dataBytes: number } {
    const d = TapeDrive.load(file, true);
    try {
      const s = d.space();
      return { files: d.files().length, inEarlyWarning: s.inEarlyWarning, dataBytes: s.dataBytes };
    } finally {
      d.unload();
    }
  }

  /** The cartridge's barcode. */
  get barcode(): string {
    return callNative(() => this.inner.label()).barcode;
  }

  /** The cartridge's label: barcode, capacity and block size. */
  label(): { barcode: string; capacity: number; blockSize: number } {
    const l = callNative(() => this.inner.label());
    return { barcode: l.barcode, capacity: l.capacity, blockSize: l.blockSize };
  }

  /** Closed files, in order. */
  files(): TapeFileInfo[] {
    return callNative(() => this.inner.files()).map((f) => ({ file: f.file, content: f.content, blocks: f.blocks, bytes: f.bytes, dataBytes: f.dataBytes }));
  }

  /** Capacity, use and early warning. */
  space(): TapeSpaceInfo {
    const s = callNative(() => this.inner.space());
    const dataBytes = this.files().reduce((a, f) => a + f.dataBytes, 0);
    return { capacity: s.capacity, used: s.used, earlyWarningAt: s.earlyWarningAt, inEarlyWarning: s.inEarlyWarning, dataBytes };
  }

  /** Positions at the end of data, where the next file is appended. */
  spaceToEod(): void {
    callNative(() => this.inner.spaceToEod());
  }

  /**
   * Executes segment commands on this cartridge, as a copy device does (crates/xcopy),
   * reading a volume or another copy of a job (`TapeSource`):
   * each command's chunk is appended to one open segment file, left open for
   * `closeSegment`. A command's error, or its not completing within `timeoutMs`, stops
   * the run and is reported in `stop` (with the commands left); it is not thrown.
   */
  async executeCommands(
    source: Volume | TapeSource,
    commands: readonly SegmentCommand[],
    opts: TransferOptions & { timeoutMs?: number; fault?: StreamFault; faultBase?: number } = {},
  ): Promise<CommandsRun> {
    const o = { timeoutMs: opts.timeoutMs, fault: opts.fault, faultBase: opts.faultBase };
    // Another copy of a job on cartridges is read as a volume is (`backup copy`).
    const job = callNative(() =>
      source instanceof TapeSource ? native.XcopyJob.executeFromTape(this.inner, source.handle, [...commands], o) : native.XcopyJob.execute(this.inner, source.handle, [...commands], o),
    );
    const abort = (): void => job.cancel();
    opts.signal?.addEventListener('abort', abort, { once: true });
    if (opts.signal?.aborted) job.cancel();
    try {
      const r = await withPolledProgress('backup', awaitNative(job.run()), () => job.progress(), opts.onProgress);
      return {
        completed: r.completed,
        stop: r.stop ? { ...r.stop, reason: r.stop.reason as DeviceStop['reason'] } : undefined,
        remaining: r.remaining,
        open: r.open,
        stuck: r.stuck,
      };
    } finally {
      opts.signal?.removeEventListener('abort', abort);
    }
  }

  /**
   * Closes the segment `executeCommands` left open, on a native thread: syncs it,
   * writes its filemark, then `catalog` (if given) as a catalog file with its own
   * filemark, synced. The drive is busy (E_BUSY) until the promise settles, so the
   * cartridge is unloaded only after its close: the tape analogue of an immediate
   * UNLOAD, while another drive object writes the next cartridge.
   */
  async closeSegment(catalog: Buffer | null): Promise<SegmentClosed> {
    const job = callNative(() => native.TapeJob.closeSegment(this.inner, catalog));
    const r = await awaitNative(job.run());
    return { file: r.file, catalogFile: r.catalogFile ?? undefined, earlyWarning: r.earlyWarning };
  }

  /** Drops a file left open (a segment never closed): the cartridge is cut back to its last filemark. */
  abandon(): void {
    callNative(() => this.inner.abandon());
  }

  /** Writes a small catalog file after a segment. */
  writeFile(data: Buffer, content = 'catalog'): { file: number; earlyWarning: boolean } {
    const r = callNative(() => this.inner.writeFile(data, content));
    return { file: r.file, earlyWarning: r.earlyWarning };
  }

  /** Reads a small file whole. */
  readFile(file: number): Buffer {
    return callNative(() => this.inner.readFile(file));
  }

  /**
   * Reads segment `file` into the file at `path` (or through a volume's write path,
   * `plex`: its pairs duplex what is restored) from byte `targetOffset`, verifying
   * every block's CRC and, when the whole segment is read, its length and digest. With
   * `firstBlock` the segment is a chunk: `expectedLength` bytes from that block.
   */
  async readSegment(
    file: number,
    dest: string | NativePlex,
    targetOffset: number,
    opts: TransferOptions & { firstBlock?: number; expectedLength?: number; expectedDigest?: string; range?: { offset: number; length: number } } = {},
  ): Promise<{ bytes: number }> {
    const o = { targetOffset, firstBlock: opts.firstBlock, expectedLength: opts.expectedLength, expectedDigest: opts.expectedDigest, range: opts.range };
    const job = callNative(() => (typeof dest === 'string' ? native.TapeJob.restoreToFile(this.inner, file, dest, o) : native.TapeJob.restoreToPlex(this.inner, file, dest, o)));
    const r = await run(job, 'restore', opts);
    return { bytes: r.bytes };
  }

  /** Unloads the cartridge (releases its lock). */
  unload(): void {
    callNative(() => this.inner.unload());
  }
}
