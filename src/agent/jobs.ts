/**
 * The agent's jobs: long operations (copies, resyncs, fills) it runs, in the foreground
 * of a client that waits or in the background after the client left. One state machine
 * per job; every transition goes through `move`, which checks it and logs it.
 */
import { asPlexusError, PlexusError } from '../errors.js';
import type { ProgressCallback, ProgressEvent } from '../progress.js';
import type { AgentLog } from './log.js';

/** Where a job is in its life. */
export type JobState = 'running' | 'done' | 'failed' | 'cancelled';

/** The transitions a job may make: it ends once, in one of three ways. */
const TRANSITIONS: Record<JobState, readonly JobState[]> = {
  running: ['done', 'failed', 'cancelled'],
  done: [],
  failed: [],
  cancelled: [],
};

/** A job as `plexus jobs` lists it. */
export interface JobInfo {
  id: string;
  kind: string;
  /** What it works on: `primary → secondary`, a group, a volume. */
  target: string;
  state: JobState;
  /** Runs without a client waiting (it survives the client). */
  background: boolean;
  done: number;
  total: number;
  percent: number;
  startedAt: string;
  endedAt: string | null;
  error: { code: string; message: string } | null;
}

/** What a job's body is given. */
export interface JobContext {
  signal: AbortSignal;
  onProgress: ProgressCallback;
}

interface Job {
  info: JobInfo;
  abort: AbortController;
  promise: Promise<unknown>;
  listeners: Set<ProgressCallback>;
}

/** How many finished jobs `list` keeps showing. */
const KEEP_FINISHED = 100;

/** The jobs of one agent. */
export class Jobs {
  private readonly jobs = new Map<string, Job>();
  private next = 1;

  constructor(private readonly log: AgentLog) {}

  /** Starts `body` as a job; its promise settles with the body's result. */
  start<T>(kind: string, target: string, background: boolean, body: (ctx: JobContext) => Promise<T>): { id: string; promise: Promise<T> } {
    const id = String(this.next++);
    const abort = new AbortController();
    const info: JobInfo = { id, kind, target, state: 'running', background, done: 0, total: 0, percent: 0, startedAt: new Date().toISOString(), endedAt: null, error: null };
    const listeners = new Set<ProgressCallback>();
    const onProgress = (e: ProgressEvent): void => {
      info.done = e.done;
      info.total = e.total;
      info.percent = e.total > 0 ? Math.floor((e.done / e.total) * 100) : 0;
      for (const l of listeners) l(e);
    };
    this.log.event('job-started', { job: id, kind, target, background });
    const promise = (async () => {
      try {
        const result = await body({ signal: abort.signal, onProgress });
        this.move(info, 'done');
        return result;
      } catch (e) {
        const err = asPlexusError(e);
        info.error = { code: err.code, message: err.message };
        this.move(info, err.code === 'E_CANCELLED' ? 'cancelled' : 'failed');
        throw err;
      } finally {
        listeners.clear();
        this.prune();
      }
    })();
    // A background job's failure is in its record and the log; nobody awaits it.
    promise.catch(() => undefined);
    this.jobs.set(id, { info, abort, promise, listeners });
    return { id, promise };
  }

  /** Follows a job's progress until it ends. */
  follow(id: string, cb: ProgressCallback): () => void {
    const job = this.jobs.get(id);
    job?.listeners.add(cb);
    return () => job?.listeners.delete(cb);
  }

  /** Every job, newest first. */
  list(): JobInfo[] {
    return [...this.jobs.values()].map((j) => ({ ...j.info })).reverse();
  }

  /** Jobs still running. */
  running(): JobInfo[] {
    return this.list().filter((j) => j.state === 'running');
  }

  /** Asks a running job to stop (it ends `cancelled` once its engine stopped between chunks). */
  cancel(id: string): JobInfo {
    const job = this.jobs.get(id);
    if (!job) throw new PlexusError('E_NOENT', `no job ${id} (see plexus jobs)`);
    if (job.info.state !== 'running') throw new PlexusError('E_STATE', `job ${id} is ${job.info.state}, not running`);
    this.log.event('job-cancel-requested', { job: id });
    job.abort.abort();
    return { ...job.info };
  }

  /** Cancels every running job and waits until all have ended (at most `ms`). */
  async stopAll(ms: number): Promise<void> {
    const running = [...this.jobs.values()].filter((j) => j.info.state === 'running');
    for (const j of running) j.abort.abort();
    const all = Promise.allSettled(running.map((j) => j.promise));
    await Promise.race([all, new Promise((r) => setTimeout(r, ms).unref())]);
  }

  private move(info: JobInfo, to: JobState): void {
    if (!TRANSITIONS[info.state].includes(to)) throw new PlexusError('E_INTERNAL', `job ${info.id} cannot go from ${info.state} to ${to}`);
    const from = info.state;
    info.state = to;
    info.endedAt = new Date().toISOString();
    this.log.event('job-state', { job: info.id, kind: info.kind, target: info.target, from, to, error: info.error ?? undefined });
  }

  private prune(): void {
    const finished = [...this.jobs.values()].filter((j) => j.info.state !== 'running');
    for (const j of finished.slice(0, Math.max(finished.length - KEEP_FINISHED, 0))) this.jobs.delete(j.info.id);
  }
}
