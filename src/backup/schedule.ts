/** The backup processing table (Fig. 2 of JP 2001-095789): number, date/time, target. */
import { Catalog, type ScheduleRow } from '../catalog/catalog.js';
import { asPlexusError, guarded, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { Library } from '../tape/library.js';
import { VolumeStore } from '../volumes/store.js';
import { type BackupOptions, type BackupReport, runBackup } from './backup.js';
import { type PolicyOutcome, type PolicyPassOptions, runDuePolicies } from './policy-runner.js';

/** Parses a user's date/time (ISO 8601, or `now`, or `+N[smhd]` from now) into ISO UTC. */
export function parseWhen(text: string, now = new Date()): string {
  const t = text.trim();
  if (t === 'now') return now.toISOString();
  const rel = /^\+(\d+)([smhd])$/.exec(t);
  if (rel) {
    const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(now.getTime() + Number(rel[1]) * unit).toISOString();
  }
  const d = new Date(t);
  if (!/^\d{4}-\d{2}-\d{2}/.test(t) || Number.isNaN(d.getTime())) {
    throw new PlexusError('E_INVALID', `'${text}' is not a date/time: use ISO 8601 (2026-12-01T02:00, with an optional zone), now, or +N[smhd]`);
  }
  return d.toISOString();
}

/** Adds a scheduled backup of volume `target`; returns its number. */
export function addSchedule(home: Home, target: string, at: string, library?: string): number {
  return guarded(() => add(home, target, at, library));
}

function add(home: Home, target: string, at: string, library?: string): number {
  new VolumeStore(home).open(target, { readOnly: true });
  if (library !== undefined) Library.open(home, library);
  const catalog = Catalog.open(home);
  try {
    return catalog.addSchedule(parseWhen(at), target, library);
  } finally {
    catalog.close();
  }
}

/** The schedule, by time. */
export function listSchedule(home: Home): ScheduleRow[] {
  return guarded(() => list(home));
}

function list(home: Home): ScheduleRow[] {
  const catalog = Catalog.open(home);
  try {
    return catalog.schedule();
  } finally {
    catalog.close();
  }
}

/** The outcome of one scheduled entry. */
export interface DueOutcome {
  schedule: number;
  target: string;
  status: 'done' | 'failed';
  job?: number;
  report?: BackupReport;
  error?: { code: string; message: string };
}

/**
 * Runs every entry due at `now`, one after another, and records each outcome. Entries
 * are claimed in one transaction first, so two `run-due` at once never run one twice.
 */
export function runDue(home: Home, now = new Date(), opts: Omit<BackupOptions, 'library' | 'scheduleId'> = {}): Promise<DueOutcome[]> {
  return guarded(() => runDueEntries(home, now, opts));
}

async function runDueEntries(home: Home, now: Date, opts: Omit<BackupOptions, 'library' | 'scheduleId'>): Promise<DueOutcome[]> {
  const catalog = Catalog.open(home);
  const out: DueOutcome[] = [];
  try {
    const due = catalog.claimDue(now);
    try {
      await runClaimed(home, catalog, due, opts, out);
    } finally {
      // Entries not run (an error escaped) are given up: the next open settles them.
      for (const d of due) if (!out.some((o) => o.schedule === d.id)) catalog.releaseClaim(d.id);
    }
  } finally {
    catalog.close();
  }
  return out;
}

/** Runs the claimed entries one after another, pushing each outcome as it is recorded. */
async function runClaimed(home: Home, catalog: Catalog, due: ScheduleRow[], opts: Omit<BackupOptions, 'library' | 'scheduleId'>, out: DueOutcome[]): Promise<void> {
  for (const d of due) {
    let outcome: DueOutcome;
    try {
      const report = await runBackup(home, d.target, { ...opts, library: d.library ?? undefined, scheduleId: d.id });
      outcome = { schedule: d.id, target: d.target, status: 'done', job: report.job, report };
    } catch (e) {
      const err = asPlexusError(e);
      outcome = { schedule: d.id, target: d.target, status: 'failed', error: { code: err.code, message: err.message } };
    }
    catalog.finishSchedule(d.id, outcome.status, outcome.status === 'done' ? `job ${outcome.job}` : `${outcome.error!.code}: ${outcome.error!.message}`);
    out.push(outcome);
  }
}

/** What `schedule run-due` ran: the schedule's entries and the policies' backups. */
export interface AllDue {
  schedule: DueOutcome[];
  policies: PolicyOutcome[];
}

/**
 * Everything due at `now`: the schedule's entries (one after another, as runDue) and,
 * at the same time, the policies' backups (runDuePolicies, on a clock that reads `now`
 * as the pass starts and runs on in real time). Their jobs share the drives: the policy
 * runner counts the schedule's jobs among those holding them.
 */
export async function runAllDue(home: Home, now = new Date(), opts: Omit<BackupOptions, 'library' | 'scheduleId'> & Pick<PolicyPassOptions, 'clock'> = {}): Promise<AllDue> {
  const { clock, ...backup } = opts;
  const [schedule, policies] = await Promise.allSettled([
    runDue(home, now, backup),
    runDuePolicies(home, { clock: clock ?? clockFrom(now), onLog: backup.onLog, signal: backup.signal, host: backup.host }),
  ]);
  if (schedule.status === 'rejected') throw schedule.reason;
  if (policies.status === 'rejected') throw policies.reason;
  return { schedule: schedule.value, policies: policies.value };
}

/** A clock that reads `start` now and runs on in real time (a simulated day in tests, PLEXUS_NOW in the agent). */
export function clockFrom(start: Date): () => Date {
  const offset = start.getTime() - Date.now();
  return () => new Date(Date.now() + offset);
}
