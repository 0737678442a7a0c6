/**
 * Firing policies: one pass claims the volume backups due now (policy-plan.ts decides
 * which, inside the catalog's write transaction, so two passes at once — the agent's
 * timer and a `run-due` from cron — never start one twice nor overbook a drive), runs
 * them at once, and looks again whenever one ends (or after `recheckMs`), until nothing
 * is running and nothing more is due. A library never has more backups at once than
 * drives in service: the drives that other jobs hold (a `backup run` by hand) count too.
 * After each complete job, retention runs for its volume (retention.ts).
 *
 * The clock is injectable (`clock`): the slots and the runs' times are on it, so a test
 * drives a day of policies in seconds; the jobs themselves keep real times.
 */
import { Catalog, type PolicyRow, type PolicyRunRow } from '../catalog/catalog.js';
import { asPlexusError, guarded } from '../errors.js';
import type { Home } from '../home/home.js';
import { driveName, Inventory } from '../resources/inventory.js';
import { Library } from '../tape/library.js';
import { type BackupOptions, type BackupReport, runBackup } from './backup.js';
import { volumeData } from './estimates.js';
import { lastRunsOf, policySpec } from './policy.js';
import { duePolicyRuns } from './policy-plan.js';
import { applyRetention } from './retention.js';

/** How one policy backup ended. */
export interface PolicyOutcome {
  policy: string;
  volume: string;
  /** The run's number (policy_runs). */
  run: number;
  /** `cancelled`: stopped before it ended; due again in its slot. */
  status: 'done' | 'failed' | 'cancelled';
  job?: number;
  error?: { code: string; message: string };
  /** Jobs retention expired after it, and cartridges it freed. */
  expired: number[];
  freed: string[];
}

/** Options of a pass. */
export interface PolicyPassOptions {
  /** The policy clock (default: the real one). */
  clock?: () => Date;
  /** Runs one backup (default: runBackup in this process; the agent runs it as one of its jobs). */
  launch?: (volume: string, opts: BackupOptions) => Promise<BackupReport>;
  /** While backups run, look for newly due ones this often too (default 60 s). */
  recheckMs?: number;
  /** Told of every start and end, one line each. */
  onLog?: (line: string) => void;
  /** Stops claiming; running backups are cancelled (and recorded `cancelled`). */
  signal?: AbortSignal;
  /** The host identity the backups read as (see BackupOptions.host). */
  host?: string;
}

/** Runs every policy backup due, as drives allow, until none is running or due; returns their outcomes. */
export function runDuePolicies(home: Home, opts: PolicyPassOptions = {}): Promise<PolicyOutcome[]> {
  return guarded(() => pass(home, opts));
}

async function pass(home: Home, opts: PolicyPassOptions): Promise<PolicyOutcome[]> {
  const clock = opts.clock ?? (() => new Date());
  const catalog = Catalog.open(home);
  const out: PolicyOutcome[] = [];
  const active = new Map<number, Promise<void>>();
  let failure: unknown;
  try {
    for (;;) {
      if (!opts.signal?.aborted && failure === undefined) {
        try {
          const { runs, policies } = claim(home, catalog, clock());
          for (const r of runs) {
            opts.onLog?.(`policy ${r.policy}: backing up ${r.volume} (run ${r.id}, slot ${r.slot})`);
            const done = runOne(home, catalog, r, policies.get(r.policy)!, opts, clock).then((o) => void out.push(o));
            active.set(
              r.id,
              done.finally(() => active.delete(r.id)),
            );
          }
        } catch (e) {
          // Stop claiming; what runs is awaited before the failure is the pass's.
          failure = e;
        }
      }
      if (active.size === 0) break;
      const wait = pause(opts.recheckMs ?? 60_000, opts.signal);
      try {
        await Promise.race([...active.values(), wait.done]);
      } finally {
        wait.cancel();
      }
    }
  } finally {
    await Promise.allSettled(active.values());
    catalog.close();
  }
  if (failure !== undefined) throw failure;
  return out;
}

/** Claims the runs due at `now`; the policies they belong to, by name. */
function claim(home: Home, catalog: Catalog, now: Date): { runs: PolicyRunRow[]; policies: Map<string, PolicyRow> } {
  const policies = new Map<string, PolicyRow>();
  // Nothing to claim without an enabled policy: no write transaction either.
  if (!catalog.policies().some((p) => p.enabled)) return { runs: [], policies };
  const runs = catalog.claimPolicyRuns((running) => {
    const enabled = catalog.policies().filter((p) => p.enabled);
    for (const p of enabled) policies.set(p.name, p);
    const specs = enabled.map(policySpec);
    const free = new Map<string, number>();
    for (const lib of new Set(specs.map((s) => s.library))) {
      const held = running.filter((r) => r.library === lib).reduce((a, r) => a + r.drives, 0) + catalog.drivesHeldByOtherJobs(lib);
      free.set(lib, Math.max(0, drivesInService(home, catalog, lib) - held));
    }
    const bytes = new Map(enabled.flatMap((p) => p.volumes).map((v) => [v, volumeData(home, v, { changed: false }).allocatedBytes]));
    return duePolicyRuns(specs, lastRunsOf(catalog, enabled), now, free, bytes).map((d) => ({ ...d, slot: d.slot.toISOString() }));
  }, now.toISOString());
  return { runs, policies };
}

/** Drives of `library` not marked unavailable in the inventory (0 if the library cannot be opened). */
export function drivesInService(home: Home, catalog: Catalog, library: string): number {
  let lib: Library;
  try {
    lib = Library.open(home, library);
  } catch {
    return 0;
  }
  const inv = Inventory.open(home, { sync: false, catalog });
  try {
    const names = Array.from({ length: lib.config.drives }, (_, d) => driveName(lib.name, d));
    return names.length - inv.unavailableAmong(names).length;
  } finally {
    inv.close();
  }
}

/** Runs one claimed backup, records how it ended, and applies retention after a complete one. */
async function runOne(home: Home, catalog: Catalog, run: PolicyRunRow, policy: PolicyRow, opts: PolicyPassOptions, clock: () => Date): Promise<PolicyOutcome> {
  const launch = opts.launch ?? ((volume, o) => runBackup(home, volume, o));
  const base = { policy: run.policy, volume: run.volume, run: run.id, expired: [] as number[], freed: [] as string[] };
  let jobId: number | undefined;
  let outcome: PolicyOutcome;
  try {
    const report = await launch(run.volume, {
      mode: policy.mode,
      library: policy.library,
      streams: policy.streams ?? undefined,
      host: opts.host,
      signal: opts.signal,
      onLog: opts.onLog,
      onJob: (id) => {
        jobId = id;
        catalog.setPolicyRunJob(run.id, id);
      },
    });
    outcome = { ...base, status: 'done', job: report.job };
    catalog.finishPolicyRun(run.id, 'done', `job ${report.job}`, clock().toISOString(), report.job);
  } catch (e) {
    const err = asPlexusError(e);
    const status = err.code === 'E_CANCELLED' ? 'cancelled' : 'failed';
    outcome = { ...base, status, ...(jobId === undefined ? {} : { job: jobId }), error: { code: err.code, message: err.message } };
    catalog.finishPolicyRun(run.id, status, `${err.code}: ${err.message}${status === 'cancelled' ? ' (due again)' : ''}`, clock().toISOString(), jobId);
  }
  opts.onLog?.(
    `policy ${run.policy}: ${run.volume} ${outcome.status}${outcome.job === undefined ? '' : ` (job ${outcome.job})`}${outcome.error ? `: ${outcome.error.message} (${outcome.error.code})` : ''}`,
  );
  if (outcome.status === 'done' && policy.keep !== null) {
    try {
      const r = applyRetention(home, catalog, { policy: run.policy, volume: run.volume, now: clock() });
      outcome.expired = r.expired.map((x) => x.job);
      outcome.freed = r.freed.map((x) => x.barcode);
      if (r.expired.length > 0 || r.freed.length > 0) {
        opts.onLog?.(`policy ${run.policy}: expired job${r.expired.length === 1 ? '' : 's'} ${outcome.expired.join(', ') || '-'}; freed ${outcome.freed.join(', ') || 'no cartridge'}`);
      }
    } catch (e) {
      // The backup is done and recorded; retention runs again after the next one (or by hand).
      const err = asPlexusError(e);
      opts.onLog?.(`policy ${run.policy}: retention after job ${outcome.job} failed: ${err.message} (${err.code})`);
    }
  }
  return outcome;
}

/** Sleeps `ms`, or until `signal` aborts or `cancel` is called (no timer is left behind). */
function pause(ms: number, signal?: AbortSignal): { done: Promise<void>; cancel: () => void } {
  let cancel = (): void => undefined;
  const done = new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(end, ms);
    function end(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', end);
      resolve();
    }
    signal?.addEventListener('abort', end, { once: true });
    cancel = end;
  });
  return { done, cancel };
}
