/** Block copy between volumes: whole or by ranges, threaded, with progress and abort. */
import { awaitNative, callNative, PlexusError } from '../errors.js';
import { type Extent, native } from '../native/binding.js';
import { type ProgressCallback, withPolledProgress } from '../progress.js';
import type { Volume } from './volume.js';

/** Options of a copy. */
export interface CopyOptions {
  /** Worker threads (default: one per core). */
  threads?: number;
  /** Bytes per chunk (default 4 MiB). */
  chunkSize?: number;
  /** Copy only these byte ranges (default: everything; sizes must then match). */
  ranges?: Extent[];
  /** fsync the destination before resolving (default true). */
  sync?: boolean;
  /** Copy pace in bytes per second (default: as fast as possible). */
  maxRate?: number;
  /** Cancels the copy; the Promise then rejects with code E_CANCELLED. */
  signal?: AbortSignal;
  /** Called with bytes done / total while the copy runs. */
  onProgress?: ProgressCallback;
}

/** What a copy did. */
export interface CopyReport {
  bytesCopied: number;
  chunks: number;
  elapsedMs: number;
  threads: number;
  /** Bytes per second over the whole copy. */
  rate: number;
}

/** Throws E_INVALID for a bad thread count or chunk size, before anything is touched. */
export function checkCopyOptions(opts: Pick<CopyOptions, 'threads' | 'chunkSize'>): void {
  if (opts.threads !== undefined && !(Number.isInteger(opts.threads) && opts.threads >= 1 && opts.threads <= 256)) {
    throw new PlexusError('E_INVALID', `threads must be an integer from 1 to 256, got ${opts.threads}`);
  }
  if (opts.chunkSize !== undefined && !(Number.isSafeInteger(opts.chunkSize) && opts.chunkSize >= 4096)) {
    throw new PlexusError('E_INVALID', `chunk size must be at least 4 KiB, got ${opts.chunkSize}`);
  }
}

/** Copies `src` onto `dst` (same offsets). Runs off the JavaScript thread. */
export async function copyVolume(src: Volume, dst: Volume, opts: CopyOptions = {}): Promise<CopyReport> {
  checkCopyOptions(opts);
  if (opts.signal?.aborted) throw new PlexusError('E_CANCELLED', 'copy cancelled before it started');
  const job = callNative(
    () =>
      new native.CopyJob(src.handle, dst.handle, {
        threads: opts.threads,
        chunkSize: opts.chunkSize,
        ranges: opts.ranges,
        sync: opts.sync,
        maxRate: opts.maxRate,
      }),
  );
  const abort = (): void => job.cancel();
  opts.signal?.addEventListener('abort', abort, { once: true });
  try {
    const r = await withPolledProgress('copy', awaitNative(job.run()), () => job.progress(), opts.onProgress);
    return { ...r, rate: r.bytesCopied / Math.max(r.elapsedMs / 1000, 1e-9) };
  } finally {
    opts.signal?.removeEventListener('abort', abort);
  }
}
