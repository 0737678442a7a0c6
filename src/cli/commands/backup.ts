/** `plexus backup run|schedule`, `plexus catalog jobs|show|rebuild`, `plexus restore`. */
import { Command } from 'commander';
import { BACKUP_MODES, MAX_COMMAND_TIMEOUT_MS, runBackup, type BackupMode } from '../../backup/backup.js';
import { rebuildCatalog } from '../../backup/rebuild.js';
import { restoreJob } from '../../backup/restore.js';
import { addSchedule, listSchedule, runDue } from '../../backup/schedule.js';
import { Catalog } from '../../catalog/catalog.js';
import { PlexusError } from '../../errors.js';
import { formatBytes, formatRate } from '../../util/size.js';
import { homeOf, intOpt, sizeOpt } from '../context.js';
import { printFields, printJson, printTable } from '../render/output.js';
import { progressBar } from '../render/progress.js';

const log = (quiet: boolean) => (line: string) => {
  if (!quiet) process.stderr.write(`${line}\n`);
};

/** Registers `backup run` and `backup schedule`. */
export function backupCommand(): Command {
  const cmd = new Command('backup').description('back volumes up to tape libraries');

  cmd
    .command('run <source>')
    .description('back a volume up to tape: one stream, or redundant streams (parallel copies, chunked EXTENDED COPY with failover)')
    .option('--mode <mode>', `single (one drive), parallel (the same data down every stream) or chunked (EXTENDED COPY segment commands, moved to the next copy device on error or timeout)`, 'single')
    .option('--library <name>', 'library to write to (single: default the only one; other modes: only this one, default any)')
    .option('--streams <n>', 'streams to secure in parallel and chunked modes', '2')
    .option('--chunk <bytes>', 'bytes per segment command, e.g. 10M (a multiple of the cartridges\' block size)', '10M')
    .option('--timeout <seconds>', 'a segment command taking longer fails its stream: a hung device (default 10, or 1 per MiB of larger chunks)')
    .option('--drive-timeout <seconds>', 'single mode: give up waiting for a free drive after this long (default: wait)')
    .option('--json', 'print the report as JSON')
    .action(
      async (
        source: string,
        o: { library?: string; mode: string; streams: string; chunk: string; timeout?: string; driveTimeout?: string; json?: boolean },
        c: Command,
      ) => {
        if (!BACKUP_MODES.includes(o.mode as BackupMode)) throw new PlexusError('E_INVALID', `--mode must be one of ${BACKUP_MODES.join(', ')}, not '${o.mode}'`);
        const driveTimeout = intOpt(o.driveTimeout, 'drive timeout', 0, 31_536_000);
        const timeout = o.timeout === undefined ? undefined : Number(o.timeout);
        if (timeout !== undefined && (!(timeout > 0) || !(timeout * 1000 <= MAX_COMMAND_TIMEOUT_MS))) {
          throw new PlexusError('E_INVALID', `--timeout must be a positive number of seconds up to ${MAX_COMMAND_TIMEOUT_MS / 1000}, not '${o.timeout}'`);
        }
        const streams = intOpt(o.streams, 'stream count', 1, 16);
        const chunk = sizeOpt(o.chunk, 'chunk size');
        const bar = progressBar(`backup ${source}`, Boolean(process.stderr.isTTY) && !o.json);
        // Ctrl-C cancels the job: its streams are released and what was closed is kept.
        const abort = new AbortController();
        const onSigint = (): void => abort.abort();
        process.once('SIGINT', onSigint);
        try {
          const r = await runBackup(homeOf(c), source, {
            signal: abort.signal,
            mode: o.mode as BackupMode,
            library: o.library,
            streams,
            chunk,
            commandTimeoutMs: timeout === undefined ? undefined : timeout * 1000,
            driveTimeoutMs: driveTimeout === undefined ? undefined : driveTimeout * 1000,
            onProgress: bar.callback,
            onLog: log(Boolean(o.json)),
          });
          bar.stop();
          if (o.json) return printJson(r);
          process.stdout.write(
            `job ${r.job}: backed up ${source} (${formatBytes(r.bytes)}, ${r.mode}) to ${r.cartridges.join(', ')} in ${(r.elapsedMs / 1000).toFixed(2)} s (${formatRate(r.bytes / Math.max(r.elapsedMs / 1000, 1e-9))})\n`,
          );
          if (r.mode !== 'single') {
            printTable(
              ['STREAM', 'MOVER', 'DRIVE', 'PATH', 'BYTES', 'STATUS', 'CARTRIDGES'],
              r.streams.map((s) => [String(s.stream), s.mover ?? '-', s.drive, s.path.join(' '), formatBytes(s.bytes), s.error ? `${s.status}: ${s.error}` : s.status, s.cartridges.join(' ') || '-']),
            );
          }
        } finally {
          bar.stop();
          process.off('SIGINT', onSigint);
        }
      },
    );

  const schedule = cmd.command('schedule').description('the backup processing table: number, date/time, target');
  schedule
    .command('add <source>')
    .description('schedule a backup of a volume')
    .requiredOption('--at <datetime>', 'when: ISO 8601 (2026-12-01T02:00), now, or +N[smhd]')
    .option('--library <name>', 'library to write to')
    .option('--json', 'print the entry as JSON')
    .action((source: string, o: { at: string; library?: string; json?: boolean }, c: Command) => {
      const home = homeOf(c);
      const id = addSchedule(home, source, o.at, o.library);
      const entry = listSchedule(home).find((s) => s.id === id)!;
      if (o.json) return printJson(entry);
      process.stdout.write(`scheduled backup ${id} of ${source} at ${entry.at}\n`);
    });
  schedule
    .command('list')
    .description('list scheduled backups')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }, c: Command) => {
      const rows = listSchedule(homeOf(c));
      if (o.json) return printJson(rows);
      if (rows.length === 0) return void process.stdout.write('nothing scheduled\n');
      printTable(
        ['NUMBER', 'AT', 'TARGET', 'LIBRARY', 'STATUS', 'OUTCOME'],
        rows.map((r) => [String(r.id), r.at, r.target, r.library ?? '-', r.status, r.outcome ?? '-']),
      );
    });
  schedule
    .command('run-due')
    .description('run every scheduled backup that is due, and record the outcomes')
    .option('--json', 'print the outcomes as JSON')
    .action(async (o: { json?: boolean }, c: Command) => {
      const out = await runDue(homeOf(c), new Date(), { onLog: log(Boolean(o.json)) });
      if (o.json) printJson(out);
      else if (out.length === 0) process.stdout.write('nothing due\n');
      else for (const d of out) process.stdout.write(`backup ${d.schedule} of ${d.target}: ${d.status === 'done' ? `done, job ${d.job}` : `failed: ${d.error!.message} (${d.error!.code})`}\n`);
      if (out.some((d) => d.status === 'failed')) process.exitCode = 1;
    });
  return cmd;
}

/** Registers `catalog jobs|show|rebuild`. */
export function catalogCommand(): Command {
  const cmd = new Command('catalog').description('what was backed up and where it lies');
  cmd
    .command('jobs')
    .description('list backup jobs, newest first')
    .option('--target <volume>', 'only jobs of this volume')
    .option('--status <status>', 'only jobs in this status (running, done, failed, incomplete)')
    .option('--json', 'print JSON')
    .action((o: { target?: string; status?: string; json?: boolean }, c: Command) => {
      if (o.status && !['running', 'done', 'failed', 'incomplete'].includes(o.status)) {
        throw new PlexusError('E_INVALID', `unknown job status '${o.status}' (running, done, failed, incomplete)`);
      }
      const catalog = Catalog.open(homeOf(c));
      try {
        const jobs = catalog.jobs({ target: o.target, status: o.status as 'done' | undefined });
        if (o.json) return printJson(jobs);
        if (jobs.length === 0) return void process.stdout.write('no backup jobs\n');
        printTable(
          ['JOB', 'TARGET', 'STATUS', 'SIZE', 'DATA TIME', 'STARTED', 'ENDED'],
          jobs.map((j) => [String(j.id), j.target, j.status, formatBytes(j.bytes), j.dataTime, j.startedAt, j.endedAt ?? '-']),
        );
      } finally {
        catalog.close();
      }
    });
  cmd
    .command('show <job>')
    .description('show a job and the location of every segment')
    .option('--json', 'print JSON')
    .action((jobText: string, o: { json?: boolean }, c: Command) => {
      const id = intOpt(jobText, 'job number', 1)!;
      const catalog = Catalog.open(homeOf(c));
      try {
        const job = catalog.job(id);
        const locations = catalog.locations(id);
        const segments = catalog.segments(id);
        if (o.json) return printJson({ ...job, locations, segments });
        printFields([
          ['job', job.id],
          ['target', `${job.target} (${formatBytes(job.targetSize)})`],
          ['status', job.status + (job.error ? ` (${job.error})` : '')],
          ['data time', job.dataTime],
          ['started', job.startedAt],
          ['ended', job.endedAt ?? '-'],
          ['bytes', formatBytes(job.bytes)],
          ['locations', locations.map((l) => `copy ${l.copy}.${l.seq} on ${l.library} (stream ${l.stream}, ${l.status})`).join('; ') || '-'],
        ]);
        process.stdout.write('\n');
        printTable(
          ['COPY', 'SEG', 'CARTRIDGE', 'FILE', 'OFFSET', 'LENGTH', 'CHECKSUM'],
          segments.map((s) => [`${s.copy}.${s.locationSeq}`, String(s.seq), s.barcode, String(s.fileNumber), String(s.sourceOffset), String(s.length), s.checksum]),
        );
      } finally {
        catalog.close();
      }
    });
  cmd
    .command('rebuild')
    .description('recreate the catalog of jobs by scanning the cartridges')
    .option('--library <name>', 'scan only this library')
    .option('--json', 'print the report as JSON')
    .action(async (o: { library?: string; json?: boolean }, c: Command) => {
      const r = await rebuildCatalog(homeOf(c), { library: o.library });
      if (o.json) return printJson(r);
      process.stdout.write(`rebuilt the catalog from ${r.cartridges} cartridges of ${r.libraries.join(', ')}: ${r.jobs} jobs, ${r.segments} segments\n`);
      for (const p of r.problems) process.stderr.write(`warning: ${p}\n`);
    });
  return cmd;
}

/** Registers `restore`. */
export function restoreCommand(): Command {
  return new Command('restore')
    .description('restore a backup job (or a byte range of it) to a file, verifying every checksum')
    .argument('<job>', 'job number (see plexus catalog jobs)')
    .requiredOption('--to <file>', 'destination file')
    .option('--offset <size>', 'first byte of the source to restore')
    .option('--length <size>', 'bytes to restore')
    .option('--force', 'replace an existing destination file')
    .option('--json', 'print the report as JSON')
    .action(async (jobText: string, o: { to: string; offset?: string; length?: string; force?: boolean; json?: boolean }, c: Command) => {
      const id = intOpt(jobText, 'job number', 1)!;
      const bar = progressBar(`restore job ${id}`, Boolean(process.stderr.isTTY) && !o.json);
      try {
        const r = await restoreJob(homeOf(c), id, o.to, {
          offset: sizeOpt(o.offset, 'offset'),
          length: sizeOpt(o.length, 'length'),
          force: o.force,
          onProgress: bar.callback,
          onLog: log(Boolean(o.json)),
        });
        bar.stop();
        if (o.json) return printJson(r);
        process.stdout.write(
          `restored job ${id} (${r.target}, ${formatBytes(r.bytes)} from byte ${r.offset}) to ${r.to} from ${r.loaded.join(', ')}: ${r.segments} segments verified\n`,
        );
      } finally {
        bar.stop();
      }
    });
}
