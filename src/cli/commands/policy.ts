/** `plexus backup policy add|list|show|remove|enable|disable`, `plexus backup plan`, `plexus catalog expire` (declared in ../tree/backup.ts). */
import type { BackupMode } from '../../backup/backup.js';
import { planBackups } from '../../backup/plan.js';
import { addPolicy, enablePolicy, listPolicies, removePolicy, showPolicy } from '../../backup/policy.js';
import type { PolicyOutcome } from '../../backup/policy-runner.js';
import { formatInterval, formatLocal } from '../../backup/policy-time.js';
import { expireJobs } from '../../backup/retention.js';
import { parseWhen } from '../../backup/schedule.js';
import type { PolicyRow } from '../../catalog/catalog.js';
import { formatBytes, formatRate } from '../../util/size.js';
import { type GlobalOptions, homeOf, intOpt } from '../context.js';
import { printFields, printJson, printTable } from '../render/output.js';

/** A policy backup's outcome on one line (`schedule run-due`). */
export function describePolicyOutcome(p: PolicyOutcome): string {
  const what = `policy ${p.policy}: backup of ${p.volume}`;
  if (p.status !== 'done') return `${what}: ${p.status}${p.job === undefined ? '' : ` (job ${p.job})`}: ${p.error?.message ?? ''} (${p.error?.code ?? '-'})`;
  const kept = p.expired.length > 0 ? `; expired job${p.expired.length === 1 ? '' : 's'} ${p.expired.join(', ')}` : '';
  const freed = p.freed.length > 0 ? `; freed ${p.freed.join(', ')}` : '';
  return `${what}: done, job ${p.job}${kept}${freed}`;
}

/** A time option (`--now`), or the real time. */
function nowOpt(text: string | undefined): Date {
  return text === undefined ? new Date() : new Date(parseWhen(text));
}

function describeTarget(p: PolicyRow): string {
  return `${p.library} (${p.mode}${p.mode === 'single' ? '' : `, ${p.streams ?? 2} streams`})`;
}

/** `backup policy add`. */
export function runPolicyAdd(
  name: string,
  o: GlobalOptions & { volumes: string[]; every: string; window?: string; library?: string; disk?: string; mode: string; streams?: string; keep?: string; disabled?: boolean; json?: boolean },
): void {
  const p = addPolicy(homeOf(o), {
    name,
    volumes: o.volumes,
    every: o.every,
    window: o.window,
    library: o.library,
    disk: o.disk,
    mode: o.mode as BackupMode,
    streams: intOpt(o.streams, '--streams', 1, 16),
    keep: intOpt(o.keep, '--keep', 1),
    disabled: o.disabled,
  });
  if (o.json) return void printJson(p);
  process.stdout.write(
    `policy ${p.name}: ${p.volumes.join(', ')} every ${formatInterval(p.everyS)}${p.window ? ` in ${p.window}` : ''} to ${describeTarget(p)}${p.keep ? `, keeping ${p.keep} jobs per volume` : ''}${p.enabled ? '' : ' (disabled)'}\n`,
  );
}

/** `backup policy list`. */
export function runPolicyList(o: GlobalOptions & { json?: boolean }): void {
  const rows = listPolicies(homeOf(o));
  if (o.json) return void printJson(rows);
  if (rows.length === 0) return void process.stdout.write('no backup policies\n');
  printTable(
    ['NAME', 'VOLUMES', 'EVERY', 'WINDOW', 'LIBRARY', 'MODE', 'KEEP', 'ENABLED'],
    rows.map((p) => [p.name, p.volumes.join(' '), formatInterval(p.everyS), p.window ?? 'any time', p.library, p.mode, p.keep === null ? 'all' : String(p.keep), p.enabled ? 'yes' : 'no']),
  );
}

/** `backup policy show`. */
export function runPolicyShow(name: string, o: GlobalOptions & { json?: boolean }): void {
  const d = showPolicy(homeOf(o), name);
  if (o.json) return void printJson(d);
  const p = d.policy;
  printFields([
    ['policy', p.name + (p.enabled ? '' : ' (disabled)')],
    ['every', formatInterval(p.everyS)],
    ['window', p.window ?? 'any time'],
    ['target', describeTarget(p)],
    ['keep', p.keep === null ? 'every job' : `${p.keep} complete jobs per volume`],
    ['created', p.createdAt],
  ]);
  process.stdout.write('\n');
  printTable(
    ['VOLUME', 'LAST START', 'STATUS', 'JOB', 'NEXT DUE'],
    d.volumes.map((v) => [v.volume, v.last ? formatLocal(new Date(v.last.startedAt)) : '-', v.last?.status ?? '-', v.last?.jobId ? String(v.last.jobId) : '-', formatLocal(new Date(v.nextDue))]),
  );
  if (d.runs.length === 0) return;
  process.stdout.write('\n');
  printTable(
    ['RUN', 'VOLUME', 'STARTED', 'ENDED', 'STATUS', 'OUTCOME'],
    d.runs.map((r) => [String(r.id), r.volume, formatLocal(new Date(r.startedAt)), r.endedAt ? formatLocal(new Date(r.endedAt)) : '-', r.status, r.outcome ?? '-']),
  );
}

/** `backup policy remove`. */
export function runPolicyRemove(name: string, o: GlobalOptions): void {
  removePolicy(homeOf(o), name);
  process.stdout.write(`removed policy ${name}\n`);
}

/** `backup policy enable`. */
export function runPolicyEnable(name: string, o: GlobalOptions): void {
  enablePolicy(homeOf(o), name, true);
  process.stdout.write(`policy ${name} enabled\n`);
}

/** `backup policy disable`. */
export function runPolicyDisable(name: string, o: GlobalOptions): void {
  enablePolicy(homeOf(o), name, false);
  process.stdout.write(`policy ${name} disabled\n`);
}

/** A duration in words: 42 s, 12 min, 3 h 05 min. */
function formatDuration(seconds: number): string {
  if (seconds < 90) return `${Math.ceil(seconds)} s`;
  const min = Math.ceil(seconds / 60);
  return min < 90 ? `${min} min` : `${Math.floor(min / 60)} h ${String(min % 60).padStart(2, '0')} min`;
}

/** `backup plan`. */
export function runPlan(o: GlobalOptions & { now?: string; json?: boolean }): void {
  const r = planBackups(homeOf(o), nowOpt(o.now));
  if (o.json) return void printJson(r);
  if (r.runs.length === 0 && r.warnings.length === 0) {
    process.stdout.write(`nothing planned: no enabled backup policy${r.disabled.length > 0 ? ` (disabled: ${r.disabled.join(', ')})` : ''}\n`);
    return;
  }
  printTable(
    ['START', 'END', 'POLICY', 'VOLUME', 'LIBRARY', 'DRIVE', 'DATA', 'CHANGED', 'TIME', 'IN WINDOW'],
    r.runs.map((x) => [
      formatLocal(new Date(x.start)) + (x.running ? ' (running)' : ''),
      formatLocal(new Date(x.end)),
      x.policy,
      x.volume,
      x.library,
      x.lanes.join('+'),
      x.error ? 'unreadable' : formatBytes(x.bytes),
      x.changed ? `${formatBytes(x.changed.bytes)} since ${x.changed.since}` : 'no bitmap',
      formatDuration(x.seconds),
      x.fits ? 'yes' : `no (closes ${formatLocal(new Date(x.windowClose)).slice(11)})`,
    ]),
  );
  process.stdout.write(`\n${r.totals.runs} backups, ${formatBytes(r.totals.bytes)}, ${formatDuration(r.totals.seconds)} of drive time\n`);
  for (const l of r.libraries) {
    process.stdout.write(
      `library ${l.library}: ${l.drives} drive${l.drives === 1 ? '' : 's'} in service, ${formatRate(l.bytesPerSecond)} ${l.source === 'measured' ? `measured over its last ${l.jobs} job${l.jobs === 1 ? '' : 's'}` : 'assumed (no finished job yet)'}\n`,
    );
  }
  process.stdout.write('DATA is what a backup moves: the allocated bytes of the volume (a full image; holes are skipped). CHANGED is informative.\n');
  for (const x of r.runs.filter((y) => y.error)) process.stdout.write(`warning: volume ${x.volume} of policy ${x.policy} cannot be read: ${x.error}\n`);
  for (const w of r.warnings) process.stdout.write(`warning: ${w}\n`);
  if (r.disabled.length > 0) process.stdout.write(`disabled (not planned): ${r.disabled.join(', ')}\n`);
}

/** `catalog expire`. */
export function runCatalogExpire(o: GlobalOptions & { policy?: string; dryRun?: boolean; json?: boolean }): void {
  const r = expireJobs(homeOf(o), { policy: o.policy, dryRun: o.dryRun });
  if (o.json) return void printJson(r);
  const verb = r.dryRun ? 'would expire' : 'expired';
  if (r.expired.length === 0 && r.freed.length === 0 && r.pending.length === 0) return void process.stdout.write(`nothing to expire\n`);
  for (const e of r.expired) process.stdout.write(`${verb} job ${e.job} (policy ${e.policy}, ${e.volume})\n`);
  for (const f of r.freed) process.stdout.write(`${r.dryRun ? 'would free' : 'freed'} cartridge ${f.barcode} of library ${f.library} (held jobs ${f.jobs.join(', ')}): scratch\n`);
  for (const p of r.pending) process.stdout.write(`cartridge ${p.barcode} of library ${p.library} holds only expired jobs but was not freed: ${p.reason}\n`);
}
