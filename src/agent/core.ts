/**
 * The agent's state while it runs: the home's pairs (kept open), its jobs, its exports
 * and its log; what the request handlers work on.
 */
import { PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import type { CheckpointReport, Mirrors } from '../mirror/mirrors.js';
import { PlexSet } from '../mirror/plexset.js';
import { isDuplexing } from '../mirror/states.js';
import type { JobContext, Jobs } from './jobs.js';
import type { AgentLog } from './log.js';
import type { RequestContext } from './methods.js';
import { WritePaths } from './write-paths.js';

/** The NBD side of the agent, as the core drives it (src/agent/exports.ts). */
export interface ExportControl {
  /** Re-reads which volumes exist and what they are; re-points exports whose role changed. */
  refresh(): void;
  /** Ends the connections to `volume`'s export before its role changes (it becomes a secondary, is removed, ...). */
  cut(volume: string): void;
  /** The exports and their clients. */
  list(): unknown;
  /** Where the server listens. */
  addresses(): { tcp?: string; unix?: string };
  /** NBD clients connected now (to `volume`'s export only, given one). */
  clients(volume?: string): number;
  /** Cuts `volume`'s clients and stops serving it until the returned function is called
   * (a restore writing the whole volume under them). */
  pause(volume: string): () => void;
  /** Stops the server: in-flight requests finish, exports are flushed, connections closed. */
  close(): void;
}

/** What `agent.status` reports. */
export interface AgentStatus {
  pid: number;
  home: string;
  startedAt: string;
  nbd: { tcp?: string; unix?: string; clients: number } | null;
  /** Where remote peers connect, if the agent listens for them. */
  peers: string | null;
  jobs: number;
  pairSets: string[];
}

/** The running agent's state. */
export class AgentCore {
  readonly startedAt = new Date().toISOString();
  exports?: ExportControl;
  /** Each volume's write path, shared by the library, NBD and remote replication. */
  readonly writePaths: WritePaths;
  /** Remote replication: this site's groups and targets, and the peer listener. */
  replication?: import('../remote/service.js').Replication;
  private stopping?: Promise<void>;

  constructor(
    readonly home: Home,
    readonly mirrors: Mirrors,
    readonly jobs: Jobs,
    readonly log: AgentLog,
    private readonly onStop: (why: string) => Promise<void>,
  ) {
    this.writePaths = new WritePaths(mirrors.store);
  }

  /** What the agent is doing. */
  status(): AgentStatus {
    return {
      pid: process.pid,
      home: this.home.dir,
      startedAt: this.startedAt,
      nbd: this.exports ? { ...this.exports.addresses(), clients: this.exports.clients() } : null,
      peers: this.replication?.listening ?? null,
      jobs: this.jobs.running().length,
      pairSets: PlexSet.allKept().map((s) => s.primary.name),
    };
  }

  /** Stops the agent (once; later calls get the same promise). */
  stop(why: string): Promise<void> {
    this.stopping ??= this.onStop(why);
    return this.stopping;
  }

  /** E_BUSY when a job runs on the pairs of any of `primaries`: one long operation per primary at a time. */
  exclusive(primaries: readonly string[]): void {
    for (const primary of primaries) {
      if (PlexSet.kept(primary)?.busy) {
        const job = this.jobs.running().find((j) => j.target === primary || j.target.startsWith(`${primary} → `));
        throw new PlexusError('E_BUSY', `pairs of ${primary} are busy with ${job ? `job ${job.id} (${job.kind})` : 'a running job'}; wait for it or cancel it (plexus jobs cancel ID)`);
      }
    }
  }

  /** Runs a long operation as a job the client waits for: progress to it, its cancel to the job. */
  async foreground<T>(ctx: RequestContext, kind: string, target: string, body: (j: JobContext) => Promise<T>): Promise<T> {
    const { id, promise } = this.jobs.start(kind, target, false, body);
    const unfollow = this.jobs.follow(id, ctx.onProgress);
    const cancel = (): void => {
      try {
        this.jobs.cancel(id);
      } catch {
        // Already ended.
      }
    };
    ctx.signal.addEventListener('abort', cancel, { once: true });
    try {
      return await promise;
    } finally {
      unfollow();
      ctx.signal.removeEventListener('abort', cancel);
    }
  }

  /** Something changed volumes or pairs: exports follow. */
  changed(): void {
    this.exports?.refresh();
  }

  /** `volume`'s role is about to change: its NBD clients are disconnected first. */
  exportsWillChange(volume: string): void {
    this.exports?.cut(volume);
  }

  /** `pair checkpoint`: the exports offer the new generation to clients that connect from now on. */
  checkpoint(primary: string, release?: number): CheckpointReport {
    return this.mirrors.checkpoint(primary, release);
  }

  /** `exports.list`. */
  exportList(): unknown {
    return this.exports?.list() ?? [];
  }

  /**
   * Resumes what the last owner left unfinished: every pair operation found interrupted
   * (its progress is durable in the bitmaps), and pairs suspended because their owner
   * died during mirrored writes (their write-intent bits name the regions to repair).
   * Each runs as a background job.
   */
  resumeInterrupted(): string[] {
    const byPrimary = new Map<string, Array<{ plex: string; kind: 'fill' | 'resync' }>>();
    for (const r of this.mirrors.records.all()) {
      const diedWriting = r.state === 'PSUE' && !r.needsFull && (r.lastError ?? '').startsWith('the owning process died during mirrored writes');
      const kind = r.operation?.kind === 'fill' ? 'fill' : (r.operation && isDuplexing(r.state)) || diedWriting ? 'resync' : undefined;
      if (!kind) continue;
      const list = byPrimary.get(r.primary) ?? [];
      list.push({ plex: r.secondary, kind });
      byPrimary.set(r.primary, list);
    }
    const started: string[] = [];
    // One job per primary, its plexes one after the other: one long operation per set.
    for (const [primary, todo] of byPrimary) {
      const { id } = this.jobs.start(todo.map((t) => t.kind).join('+'), primary, true, async (j) => {
        for (const t of todo) {
          const sel = { primary, plex: t.plex };
          if (t.kind === 'fill') await this.mirrors.fill(sel, j);
          else await this.mirrors.resync(sel, j);
        }
        this.changed();
      });
      started.push(id);
    }
    return started;
  }
}
