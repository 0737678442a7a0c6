/**
 * Waiting for streams other jobs hold (docs/backup-manager.md, "Waiting for streams").
 * JP 2001-095789 steps 1180/1190 fail a job that cannot secure its streams; with many
 * jobs started together that would fail every job that finds the drives busy, so a
 * job first waits a bounded time for resources held by other jobs, and fails (logged,
 * everything released) only when that time is up or when its streams could not be
 * secured even if every job let go.
 *
 * Each attempt is all or nothing (`attemptStreams`): a job never holds part of what it
 * needs while it waits, so two jobs that each could take half of what both need never
 * deadlock. Attempts are taken in turn, oldest waiter first (./queue.ts), so they do
 * not both fail either, and a job that needs many streams is not starved by jobs that
 * need fewer.
 */
import { guarded, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { logBackupManager } from './log.js';
import { leaveQueue, WaitQueue } from './queue.js';
import { attemptStreams, type SecuredStream, type SecureOptions, secureRequest, securingFailed, streamsText, unservable } from './streams.js';

/** The longest wait: 2^31 - 1 ms (24.8 days), as `setTimeout` allows. */
export const MAX_STREAM_WAIT_MS = 2_147_483_647;
/** How long a backup job waits for its streams by default: 10 minutes. */
export const DEFAULT_STREAM_WAIT_MS = 600_000;

/** Polling backoff while waiting: from the first to the last, doubling, and back to the
 * first whenever the queue moves. The last bounds how long a drive freed (or a turn
 * come) goes unnoticed: short beside a job, and a poll costs a few small reads. */
const POLL_MIN_MS = 50;
const POLL_MAX_MS = 100;
/** How often a waiter that is not at the head checks that its request can be served at all. */
const RECHECK_MS = 1000;

/** Options of `waitForStreams`. */
export interface WaitOptions extends SecureOptions {
  /** How long to wait for streams other jobs hold, in ms (default 0: one attempt, failing at once). */
  waitMs?: number;
  signal?: AbortSignal;
  /** Told once, when the job starts waiting. */
  onWait?: (line: string) => void;
}

/** Streams secured, and how long the job waited for them. */
export interface WaitedStreams {
  streams: SecuredStream[];
  /** Milliseconds from the first try to the streams (0: secured at once). */
  waitedMs: number;
}

/**
 * Secures a job's streams as `secureStreams` does, waiting up to `waitMs` for those
 * other jobs hold: the job joins the home's wait queue and tries whenever it is the
 * oldest live waiter, every 50-100 ms, holding nothing between tries. It fails with
 * E_RESOURCES — logged, nothing held — when the wait is up, at once when the streams
 * could not be secured even if every job released what it holds (too few drives,
 * movers or paths in service), or with `waitMs` 0 when the first try fails or older
 * jobs are waiting. E_CANCELLED when `signal` aborts.
 */
export function waitForStreams(home: Home, opts: WaitOptions): Promise<WaitedStreams> {
  return guarded(() => waitStreams(home, opts));
}

async function waitStreams(home: Home, opts: WaitOptions): Promise<WaitedStreams> {
  const { jobId, count, kind } = secureRequest(opts);
  const waitMs = opts.waitMs ?? 0;
  if (!(Number.isSafeInteger(waitMs) && waitMs >= 0 && waitMs <= MAX_STREAM_WAIT_MS)) {
    throw new PlexusError('E_INVALID', `the stream wait must be a whole number of milliseconds from 0 to ${MAX_STREAM_WAIT_MS}, not ${String(waitMs)}`);
  }
  const what = streamsText(count, kind);
  const started = Date.now();
  const deadline = started + waitMs;
  const queue = WaitQueue.open(home);
  let queued = false;
  try {
    if (waitMs === 0) {
      // No wait, but no jumping the queue either: what is free is promised to its head.
      const { head, ahead } = queue.turn(jobId);
      if (head) throw securingFailed(home, opts, `secured 0 of ${streamCount(count)}: ${waitingText(ahead, head.jobId)} (no wait asked)`);
      const r = await attemptStreams(home, opts, { catalog: queue.catalog });
      if (r.streams) return { streams: r.streams, waitedMs: 0 };
      throw securingFailed(home, opts, r.shortage);
    }
    const mine = queue.join({ jobId, streams: count, mover: kind, library: opts.library ?? null });
    queued = true;
    let waited = false;
    let reason = '';
    let delay = POLL_MIN_MS;
    let checked = 0;
    let before = -1;
    for (;;) {
      const { head, ahead } = queue.turn(jobId, mine);
      if (ahead !== before) delay = POLL_MIN_MS;
      before = ahead;
      // No head: the job's own entry is gone (pruned by mistake?): nobody is ahead of it.
      if (head === undefined || head.jobId === jobId) {
        // The queue entry goes in the transaction that reserves the streams: the next
        // waiter's turn starts exactly when this one's streams are held.
        const r = await attemptStreams(home, opts, { catalog: queue.catalog, reserved: (c) => leaveQueue(c, jobId) });
        if (r.streams) {
          queued = false;
          const waitedMs = waited ? Date.now() - started : 0;
          if (waited) logBackupManager(home, `job ${jobId}: secured ${what} after waiting ${elapsed(waitedMs)} s`);
          return { streams: r.streams, waitedMs };
        }
        reason = r.shortage;
      } else reason = `secured 0 of ${streamCount(count)}: ${waitingText(ahead, head.jobId)}`;
      // Waiting is for what other jobs hold; what is out of service may never come back.
      if (Date.now() - checked >= RECHECK_MS) {
        checked = Date.now();
        const never = unservable(home, opts, queue.catalog);
        if (never) throw securingFailed(home, opts, `${reason} (${never})`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw securingFailed(home, opts, `${reason}; gave up after waiting ${elapsed(Date.now() - started)} s (the stream wait)`);
      if (!waited) {
        waited = true;
        const line = `job ${jobId}: waiting up to ${seconds(waitMs)} s for ${what} (${ahead === 0 ? 'first in the queue' : `${ahead} ${ahead === 1 ? 'job' : 'jobs'} ahead`}): ${reason}`;
        logBackupManager(home, line);
        opts.onWait?.(line);
      }
      await pause(Math.min(delay, left), opts.signal);
      delay = Math.min(delay * 2, POLL_MAX_MS);
    }
  } finally {
    try {
      if (queued) queue.leave(jobId);
    } finally {
      queue.close();
    }
  }
}

const streamCount = (n: number): string => `${n} stream${n === 1 ? '' : 's'}`;

/** "job 4 waits for streams ahead of it", "3 jobs wait for streams ahead of it (first: job 4)". */
function waitingText(ahead: number, head: number | undefined): string {
  if (ahead <= 1) return `job ${head} waits for streams ahead of it`;
  return `${ahead} jobs wait for streams ahead of it (first: job ${head})`;
}

/** A configured wait in seconds: "600", "0.25". */
const seconds = (ms: number): string => (ms % 1000 === 0 ? String(ms / 1000) : (ms / 1000).toFixed(2));
/** A time waited in seconds: "1.02". */
const elapsed = (ms: number): string => (ms / 1000).toFixed(2);

/** Sleeps, or rejects with E_CANCELLED when the signal aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const cancelled = (): PlexusError => new PlexusError('E_CANCELLED', 'cancelled while waiting for streams');
    if (signal?.aborted) return reject(cancelled());
    const abort = (): void => {
      clearTimeout(t);
      reject(cancelled());
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', abort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', abort, { once: true });
  });
}
