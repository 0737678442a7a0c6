/**
 * The agent fires backup policies: every tick (a minute; PLEXUS_POLICY_TICK_MS), a pass of
 * the policy runner (src/backup/policy-runner.ts, the code `schedule run-due` runs from
 * cron), one pass at a time. Its backups run as the agent's background jobs, so
 * `plexus jobs` lists them and stopping the agent cancels them (a cancelled run is due
 * again in its slot). The policy clock is the real one, or with PLEXUS_NOW (tests) a
 * clock that reads that time as the agent starts and runs on from there.
 */
import fs from 'node:fs';
import path from 'node:path';
import { runBackup } from '../backup/backup.js';
import { runDuePolicies } from '../backup/policy-runner.js';
import { clockFrom } from '../backup/schedule.js';
import { CATALOG_FILE } from '../catalog/database.js';
import { asPlexusError, PlexusError } from '../errors.js';
import type { AgentCore } from './core.js';

/** The default tick: a policy's slots are whole minutes. */
const TICK_MS = 60_000;

/** The running timer. */
export interface PolicyTimer {
  /** Stops firing; cancels the pass's backups and waits (at most `graceMs`) for them to be recorded. */
  stop(graceMs: number): Promise<void>;
}

/** Starts firing the home's policies; the first pass runs at once. */
export function startPolicyTimer(core: AgentCore, env: NodeJS.ProcessEnv = process.env): PolicyTimer {
  const tick = env.PLEXUS_POLICY_TICK_MS === undefined ? TICK_MS : Number(env.PLEXUS_POLICY_TICK_MS);
  if (!(Number.isSafeInteger(tick) && tick > 0)) throw new PlexusError('E_INVALID', `PLEXUS_POLICY_TICK_MS must be a positive whole number of milliseconds, not '${env.PLEXUS_POLICY_TICK_MS}'`);
  let clock = (): Date => new Date();
  if (env.PLEXUS_NOW !== undefined) {
    const start = new Date(env.PLEXUS_NOW);
    if (Number.isNaN(start.getTime())) throw new PlexusError('E_INVALID', `PLEXUS_NOW must be an ISO 8601 time, not '${env.PLEXUS_NOW}'`);
    clock = clockFrom(start);
  }
  const stop = new AbortController();
  let passing: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const pass = (): void => {
    // Without a catalog there is no policy (and no catalog is made for nothing).
    if (passing || stop.signal.aborted || !fs.existsSync(path.join(core.home.dir, CATALOG_FILE))) return;
    passing = runDuePolicies(core.home, {
      clock,
      recheckMs: tick,
      signal: stop.signal,
      onLog: (line) => core.log.event('policy', { line }),
      launch: (volume, o) => {
        const { id, promise } = core.jobs.start('policy-backup', volume, true, (j) => runBackup(core.home, volume, { ...o, signal: j.signal, onProgress: j.onProgress }));
        // One listener per backup on the timer's signal, removed when it ends.
        const cancel = (): void => cancelQuietly(core, id);
        o.signal?.addEventListener('abort', cancel, { once: true });
        return promise.finally(() => o.signal?.removeEventListener('abort', cancel));
      },
    })
      .then((outcomes) => {
        if (outcomes.length > 0) core.log.event('policy-pass', { runs: outcomes.length, failed: outcomes.filter((o) => o.status !== 'done').length });
      })
      .catch((e) => core.log.event('policy-pass-failed', { error: asPlexusError(e).message, code: asPlexusError(e).code }))
      .finally(() => {
        passing = undefined;
      });
  };
  const schedule = (): void => {
    timer = setTimeout(() => {
      pass();
      schedule();
    }, tick);
    timer.unref();
  };
  pass();
  schedule();
  return {
    async stop(graceMs: number): Promise<void> {
      clearTimeout(timer);
      stop.abort();
      if (passing) await Promise.race([passing, new Promise((r) => setTimeout(r, graceMs).unref())]);
    },
  };
}

/** Cancels an agent job that may have ended already. */
function cancelQuietly(core: AgentCore, id: string): void {
  try {
    core.jobs.cancel(id);
  } catch {
    // It ended meanwhile.
  }
}
