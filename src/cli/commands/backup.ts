/** `plexus backup run|schedule`, `plexus catalog jobs|show|rebuild`, `plexus restore` (declared in ../tree/backup.ts). */

import path from 'node:path';
import { BACKUP_MODES, type BackupMode, type BackupOptions, MAX_COMMAND_TIMEOUT_MS, runBackup } from '../../backup/backup.js';
import { copyJob } from '../../backup/copy-job.js';
import { rebuildCatalog } from '../../backup/rebuild.js';
import { restoreJob } from '../../backup/restore.js';
import { type RestoreMirrorMode, restoreToVolume, type VolumeRestoreReport } from '../../backup/restore-volume.js';
import { addSchedule, listSchedule, parseWhen, runAllDue } from '../../backup/schedule.js';
import { describeStep, type FlowStep, type HookedBackupReport, runHookedBackup, runSplitBackup, type SplitBackupReport } from '../../backup/split-backup.js';
import { Catalog, type SegmentRow } from '../../catalog/catalog.js';
import { PlexusError } from '../../errors.js';
import { MAX_STREAM_WAIT_MS } from '../../resources/stream-wait.js';
import { formatBytes, formatRate } from '../../util/size.js';
import { agentOf, ask } from '../agent.js';
import { cancellable } from '../cancel.js';
import { type GlobalOptions, homeOf, intOpt, sizeOpt } from '../context.js';
import { printFields, printJson, printTable } from '../render/output.js';
import { progressBar } from '../render/progress.js';
import { describePolicyOutcome } from './policy.js';

const log = (quiet: boolean) => (line: string) => {
  if (!quiet) process.stderr.write(`${line}\n`);
};

/** `backup run`. */
export async function runBackupRun(
  source: string,
  o: GlobalOptions & { library?: string; mode: string; streams: string; chunk: string; timeout?: string; driveTimeout?: string; waitStreams: string; background?: boolean; json?: boolean } & FlowFlags,
): Promise<void> {
  if (!BACKUP_MODES.includes(o.mode as BackupMode)) throw new PlexusError('E_INVALID', `--mode must be one of ${BACKUP_MODES.join(', ')}, not '${o.mode}'`);
  const driveTimeout = intOpt(o.driveTimeout, 'drive timeout', 0, 31_536_000);
  const timeout = o.timeout === undefined ? undefined : Number(o.timeout);
  if (timeout !== undefined && (!(timeout > 0) || !(timeout * 1000 <= MAX_COMMAND_TIMEOUT_MS))) {
    throw new PlexusError('E_INVALID', `--timeout must be a positive number of seconds up to ${MAX_COMMAND_TIMEOUT_MS / 1000}, not '${o.timeout}'`);
  }
  const streams = intOpt(o.streams, 'stream count', 1, 16);
  const waitStreams = intOpt(o.waitStreams, '--wait-streams', 0, Math.floor(MAX_STREAM_WAIT_MS / 1000))!;
  const chunk = sizeOpt(o.chunk, 'chunk size');
  const opts = {
    host: o.host,
    mode: o.mode as BackupMode,
    library: o.library,
    streams,
    chunk,
    commandTimeoutMs: timeout === undefined ? undefined : timeout * 1000,
    driveTimeoutMs: driveTimeout === undefined ? undefined : driveTimeout * 1000,
    streamWaitMs: waitStreams * 1000,
  };
  // With an agent running, the backup is one of its jobs (plexus jobs lists it).
  const agent = await agentOf(o);
  if (o.fromMirror || o.freeze !== undefined || o.thaw !== undefined || o.plex !== undefined || o.stage !== undefined || o.pool !== undefined) {
    if (o.background) throw new PlexusError('E_INVALID', '--background does not combine with --from-mirror or hooks yet: run it in the foreground');
    return runFlowBackup(source, o, opts, agent);
  }
  if (o.background) {
    if (!agent) throw new PlexusError('E_STATE', `--background needs the home's agent: start it with \`plexus serve --detach\``);
    const { job } = await ask<{ job: string }>(agent, 'backup.run', { source, ...opts, background: true });
    if (o.json) printJson({ background: true, job });
    else process.stdout.write(`backup of ${source} running as agent job ${job}; see plexus jobs, then plexus catalog jobs\n`);
    return;
  }
  const bar = progressBar(`backup ${source}`, Boolean(process.stderr.isTTY) && !o.json);
  try {
    // Ctrl-C cancels the job: its streams are released and what was closed is kept.
    const r = await cancellable((signal) =>
      agent
        ? ask<Awaited<ReturnType<typeof runBackup>>>(agent, 'backup.run', { source, ...opts }, { signal, onProgress: bar.callback, onLog: log(Boolean(o.json)) })
        : runBackup(homeOf(o), source, { ...opts, signal, onProgress: bar.callback, onLog: log(Boolean(o.json)) }),
    );
    bar.stop();
    if (o.json) {
      printJson(r);
      return;
    }
    process.stdout.write(
      `job ${r.job}: backed up ${source} (${formatBytes(r.bytes)}, ${r.mode}) to ${r.cartridges.join(', ')} in ${(r.elapsedMs / 1000).toFixed(2)} s (${formatRate(r.bytes / Math.max(r.elapsedMs / 1000, 1e-9))})\n` +
        `job ${r.job}: ${r.consistency === 'consistent' ? `a consistent image as of ${r.dataTime}` : 'a crash-consistent copy of a live volume'} (${r.consistencyReason})\n`,
    );
    if (r.mode !== 'single') {
      printTable(
        ['STREAM', 'MOVER', 'DRIVE', 'PATH', 'BYTES', 'STATUS', 'CARTRIDGES'],
        r.streams.map((s) => [String(s.stream), s.mover ?? '-', s.drive, s.path.join(' '), formatBytes(s.bytes), s.error ? `${s.status}: ${s.error}` : s.status, s.cartridges.join(' ') || '-']),
      );
    }
  } finally {
    bar.stop();
  }
}

/** `backup schedule add`. */
export function runScheduleAdd(source: string, o: GlobalOptions & { at: string; library?: string; json?: boolean }): void {
  const home = homeOf(o);
  const id = addSchedule(home, source, o.at, o.library);
  const entry = listSchedule(home).find((s) => s.id === id)!;
  if (o.json) {
    printJson(entry);
    return;
  }
  process.stdout.write(`scheduled backup ${id} of ${source} at ${entry.at}\n`);
}

/** `backup schedule list`. */
export function runScheduleList(o: GlobalOptions & { json?: boolean }): void {
  const rows = listSchedule(homeOf(o));
  if (o.json) {
    printJson(rows);
    return;
  }
  if (rows.length === 0) return void process.stdout.write('nothing scheduled\n');
  printTable(
    ['NUMBER', 'AT', 'TARGET', 'LIBRARY', 'STATUS', 'OUTCOME'],
    rows.map((r) => [String(r.id), r.at, r.target, r.library ?? '-', r.status, r.outcome ?? '-']),
  );
}

/** `backup schedule run-due`: the schedule's entries, then the policies' backups (their outcomes follow the entries', with a `policy` field). */
export async function runScheduleRunDue(o: GlobalOptions & { json?: boolean; now?: string }): Promise<void> {
  const now = o.now === undefined ? new Date() : new Date(parseWhen(o.now));
  const { schedule: out, policies } = await cancellable(async (signal) => {
    const r = await runAllDue(homeOf(o), now, { onLog: log(Boolean(o.json)), signal, host: o.host });
    // Ctrl-C: what was cancelled is recorded (policy runs are due again); the command says so.
    if (signal.aborted) throw new PlexusError('E_CANCELLED', 'run-due cancelled: backups that had not ended were stopped (policy runs among them are due again)');
    return r;
  });
  if (o.json) printJson([...out, ...policies]);
  else if (out.length === 0 && policies.length === 0) process.stdout.write('nothing due\n');
  else {
    for (const d of out) process.stdout.write(`backup ${d.schedule} of ${d.target}: ${d.status === 'done' ? `done, job ${d.job}` : `failed: ${d.error!.message} (${d.error!.code})`}\n`);
    for (const p of policies) process.stdout.write(`${describePolicyOutcome(p)}\n`);
  }
  if (out.some((d) => d.status === 'failed') || policies.some((p) => p.status !== 'done')) process.exitCode = 1;
}

/** `catalog jobs`. */
export function runCatalogJobs(o: GlobalOptions & { target?: string; status?: string; json?: boolean }): void {
  if (o.status && !['running', 'done', 'failed', 'incomplete', 'expired'].includes(o.status)) {
    throw new PlexusError('E_INVALID', `unknown job status '${o.status}' (running, done, failed, incomplete, expired)`);
  }
  const catalog = Catalog.open(homeOf(o));
  try {
    const jobs = catalog.jobs({ target: o.target, status: o.status as 'done' | undefined });
    if (o.json) {
      printJson(jobs);
      return;
    }
    if (jobs.length === 0) return void process.stdout.write('no backup jobs\n');
    printTable(
      ['JOB', 'TARGET', 'STATUS', 'SIZE', 'CONSISTENCY', 'DATA TIME', 'STARTED', 'ENDED'],
      jobs.map((j) => [String(j.id), j.target, j.status, formatBytes(j.bytes), j.consistency, j.dataTime, j.startedAt, j.endedAt ?? '-']),
    );
  } finally {
    catalog.close();
  }
}

/** Logical and data bytes of one copy of a job (its first): what it reads back as, and
 * what it took on the cartridges. */
function storedBytes(segments: readonly SegmentRow[]): { logicalBytes: number; dataBytes: number } {
  const first = segments[0]?.copy;
  let logicalBytes = 0;
  let dataBytes = 0;
  for (const s of segments) {
    if (s.copy !== first) continue;
    logicalBytes += s.length;
    dataBytes += s.dataBytes ?? s.length;
  }
  return { logicalBytes, dataBytes };
}

/** Options of the split-mirror flow and hooks of `backup run`. */
interface FlowFlags {
  fromMirror?: boolean;
  pool?: string;
  plex?: string;
  stage?: string;
  freeze?: string;
  thaw?: string;
  hookTimeout: string;
}

/** `backup run --from-mirror` (the flow of Fig. 2), or a plain backup with hooks. */
async function runFlowBackup(source: string, o: GlobalOptions & FlowFlags & { json?: boolean }, opts: BackupOptions, agent: Awaited<ReturnType<typeof agentOf>>): Promise<void> {
  if (!o.fromMirror && (o.plex !== undefined || o.stage !== undefined || o.pool !== undefined)) throw new PlexusError('E_INVALID', '--plex, --stage and --pool go with --from-mirror');
  const hookTimeout = intOpt(o.hookTimeout, 'hook timeout', 1, 86_400)!;
  const pool = o.pool
    ?.split(',')
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
  const flow = { ...opts, plex: o.plex, stage: o.stage, pool, freeze: o.freeze, thaw: o.thaw, hookTimeoutMs: hookTimeout * 1000 };
  const bar = progressBar(`backup ${source}`, Boolean(process.stderr.isTTY) && !o.json);
  try {
    const method = o.fromMirror ? 'backup.split' : 'backup.hooked';
    const r = await cancellable((signal) => {
      // Each step on a terminal; the report (and the agent's log) has them all.
      const onStep = process.stderr.isTTY && !o.json ? (x: FlowStep) => process.stderr.write(`${describeStep(x)}\n`) : undefined;
      const local = { ...flow, signal, onProgress: bar.callback, onLog: log(Boolean(o.json)), onStep };
      if (agent) return ask<SplitBackupReport | HookedBackupReport>(agent, method, { source, ...flow }, { signal, onProgress: bar.callback, onLog: log(Boolean(o.json)) });
      return o.fromMirror ? runSplitBackup(homeOf(o), source, local) : runHookedBackup(homeOf(o), source, local);
    });
    bar.stop();
    if (o.json) return void printJson(r);
    if ('steps' in r) {
      const b = r.backup;
      process.stdout.write(
        `split backup of ${r.primary}: ${r.plex} split at ${r.splitAt}${r.freeze || r.thaw ? ` (application frozen ${r.frozenMs} ms)` : ''}, job ${b.job} backed up ${formatBytes(b.bytes)} of ${r.source} to ${b.cartridges.join(', ')}, ${r.steps.some((x) => x.step === 'return') ? `${r.plex} returned to the pool` : `pair resynced (${formatBytes(r.resync.reduce((a, x) => a + x.bytesCopied, 0))} copied)`}\n`,
      );
    } else {
      process.stdout.write(`backed up ${r.target} (${formatBytes(r.bytes)}) as job ${r.job} to ${r.cartridges.join(', ')}${r.frozenMs !== undefined ? `, frozen ${r.frozenMs} ms` : ''}\n`);
    }
  } finally {
    bar.stop();
  }
}

/** `catalog show`. */
export function runCatalogShow(jobText: string, o: GlobalOptions & { json?: boolean }): void {
  const id = intOpt(jobText, 'job number', 1)!;
  const catalog = Catalog.open(homeOf(o));
  try {
    const job = catalog.job(id);
    const locations = catalog.locations(id);
    const segments = catalog.segments(id);
    const stored = storedBytes(segments);
    if (o.json) {
      printJson({ ...job, ...stored, locations, segments });
      return;
    }
    printFields([
      ['job', job.id],
      ['target', `${job.target} (${formatBytes(job.targetSize)})`],
      ['status', job.status + (job.error ? ` (${job.error})` : '')],
      ['data time', job.dataTime],
      ['consistency', job.consistency],
      ['started', job.startedAt],
      ['ended', job.endedAt ?? '-'],
      ['bytes', formatBytes(job.bytes)],
      ['stored', `${formatBytes(stored.logicalBytes)} logical, ${formatBytes(stored.dataBytes)} of data on cartridges (holes recorded as extents)`],
      ['locations', locations.map((l) => `copy ${l.copy}.${l.seq} on ${l.library} (stream ${l.stream}, ${l.status})`).join('; ') || '-'],
    ]);
    process.stdout.write('\n');
    printTable(
      ['COPY', 'SEG', 'CARTRIDGE', 'FILE', 'OFFSET', 'LENGTH', 'DATA', 'CHECKSUM'],
      segments.map((s) => [`${s.copy}.${s.locationSeq}`, String(s.seq), s.barcode, String(s.fileNumber), String(s.sourceOffset), String(s.length), String(s.dataBytes ?? s.length), s.checksum]),
    );
  } finally {
    catalog.close();
  }
}

/** `catalog rebuild`. */
export async function runCatalogRebuild(o: GlobalOptions & { library?: string; json?: boolean }): Promise<void> {
  const r = await cancellable((signal) => rebuildCatalog(homeOf(o), { library: o.library, signal, onLog: log(Boolean(o.json)) }));
  if (o.json) {
    printJson(r);
    return;
  }
  process.stdout.write(`rebuilt the catalog from ${r.cartridges} cartridges of ${r.libraries.join(', ')}: ${r.jobs} jobs, ${r.segments} segments\n`);
  for (const p of r.problems) process.stderr.write(`warning: ${p}\n`);
}

/** `restore`. */
export async function runRestore(
  jobText: string,
  o: GlobalOptions & { to?: string; toVolume?: string; mirror?: string; offset?: string; length?: string; force?: boolean; json?: boolean },
): Promise<void> {
  const id = intOpt(jobText, 'job number', 1)!;
  if ((o.to === undefined) === (o.toVolume === undefined)) throw new PlexusError('E_INVALID', 'restore needs one destination: --to FILE or --to-volume VOLUME');
  if (o.mirror !== 'duplex' && o.mirror !== 'resync') throw new PlexusError('E_INVALID', `--mirror must be duplex or resync, not ${o.mirror}`);
  const bar = progressBar(`restore job ${id}`, Boolean(process.stderr.isTTY) && !o.json);
  try {
    const opts = { offset: sizeOpt(o.offset, 'offset'), length: sizeOpt(o.length, 'length'), force: o.force };
    const agent = await agentOf(o);
    if (o.toVolume !== undefined) {
      const params = { job: id, toVolume: o.toVolume, mirror: o.mirror, ...opts };
      const r = await cancellable((signal) =>
        agent
          ? ask<VolumeRestoreReport>(agent, 'restore', params, { signal, onProgress: bar.callback, onLog: log(Boolean(o.json)) })
          : restoreToVolume(homeOf(o), id, o.toVolume!, { ...opts, mirror: o.mirror as RestoreMirrorMode, signal, onProgress: bar.callback, onLog: log(Boolean(o.json)) }),
      );
      bar.stop();
      if (o.json) return void printJson(r);
      const pairs = [
        ...r.duplexed.map((p) => `${p} duplexed`),
        ...r.resynced.map((p) => `${p.pair} resynced (${formatBytes(p.bytes)})`),
        ...r.tracked.map((p) => `${p} split, restored regions dirty`),
      ];
      process.stdout.write(
        `restored job ${id} (${r.target}, ${formatBytes(r.bytes)} from byte ${r.offset}) into volume ${r.volume} from ${r.loaded.join(', ')}: ${r.segments} segments verified${pairs.length > 0 ? `; ${pairs.join('; ')}` : ''}
`,
      );
      return;
    }
    const to = o.to!;
    // Through the agent, the destination is named from this process's directory.
    const r = await cancellable((signal) =>
      agent
        ? ask<Awaited<ReturnType<typeof restoreJob>>>(agent, 'restore', { job: id, to: path.resolve(to), ...opts }, { signal, onProgress: bar.callback, onLog: log(Boolean(o.json)) })
        : restoreJob(homeOf(o), id, to, { ...opts, signal, onProgress: bar.callback, onLog: log(Boolean(o.json)) }),
    );
    bar.stop();
    if (o.json) {
      printJson(r);
      return;
    }
    process.stdout.write(`restored job ${id} (${r.target}, ${formatBytes(r.bytes)} from byte ${r.offset}) to ${r.to} from ${r.loaded.join(', ')}: ${r.segments} segments verified\n`);
  } finally {
    bar.stop();
  }
}

/** `backup copy`: a second copy of a job in another library, run in this process. */
export async function runBackupCopy(jobText: string, o: GlobalOptions & { library: string; fromCopy?: string; driveTimeout?: string; json?: boolean }): Promise<void> {
  const id = intOpt(jobText, 'job number', 1)!;
  const fromCopy = intOpt(o.fromCopy, 'copy number', 0, 1_000_000);
  const driveTimeout = intOpt(o.driveTimeout, 'drive timeout', 0, 31_536_000);
  const bar = progressBar(`copy job ${id}`, Boolean(process.stderr.isTTY) && !o.json);
  try {
    const r = await cancellable((signal) =>
      copyJob(homeOf(o), id, {
        library: o.library,
        fromCopy,
        driveTimeoutMs: driveTimeout === undefined ? undefined : driveTimeout * 1000,
        signal,
        onProgress: bar.callback,
        onLog: log(Boolean(o.json)),
      }),
    );
    bar.stop();
    if (o.json) return void printJson(r);
    process.stdout.write(
      `job ${r.job}: copied copy ${r.fromCopy} (${r.fromLibraries.join(', ')}: ${r.sourceCartridges.join(', ')}) to copy ${r.copy} on library ${r.library} ` +
        `(${r.cartridges.join(', ')}): ${formatBytes(r.bytes)} in ${r.segments} segments, every block verified, in ${(r.elapsedMs / 1000).toFixed(2)} s (${formatRate(r.bytes / Math.max(r.elapsedMs / 1000, 1e-9))})\n`,
    );
  } finally {
    bar.stop();
  }
}
