/** Declares `plexus backup run|copy|schedule`, `plexus catalog jobs|show|rebuild`, `plexus restore` (run by ../commands/backup.ts). */
import { Command } from '../commander.js';
import { lazy } from '../lazy.js';

const load = () => import('../commands/backup.js');

/** Registers `backup run` and `backup schedule`. */
export function backupCommand(): Command {
  const cmd = new Command('backup').description('back volumes up to tape libraries');

  cmd
    .command('run <source>')
    .description('back a volume up to tape: one stream, or redundant streams (parallel copies, chunked EXTENDED COPY with failover)')
    .option('--mode <mode>', `single (one drive), parallel (the same data down every stream) or chunked (EXTENDED COPY segment commands, moved to the next copy device on error or timeout)`, 'single')
    .option('--library <name>', 'library to write to (single: default the only one; other modes: only this one, default any)')
    .option('--streams <n>', 'streams to secure in parallel and chunked modes', '2')
    .option('--chunk <bytes>', "bytes per segment command, e.g. 10M (a multiple of the cartridges' block size)", '10M')
    .option('--timeout <seconds>', 'a segment command taking longer fails its stream: a hung device (default 10, or 1 per MiB of larger chunks)')
    .option('--drive-timeout <seconds>', 'single mode: give up waiting for a free drive after this long (default: wait)')
    .option('--wait-streams <seconds>', 'parallel and chunked: wait this long for streams other jobs hold, in turn, oldest job first; 0 fails at once', '600')
    .option('--background', "run as a job of the home's agent (plexus serve) and return at once; plexus jobs follows it")
    .option('--from-mirror', 'split-mirror backup of a primary: freeze, split its pair, thaw, back up the split image, resync')
    .option('--plex <secondary>', 'with --from-mirror: the pair to split (default: the only one in PAIR)')
    .option('--stage <volume>', 'with --from-mirror: copy the split image to this volume and resync at once, then back up the copy')
    .option('--freeze <command>', 'shell command putting the application in backup mode (e.g. "fsfreeze -f /mnt")')
    .option('--thaw <command>', 'shell command resuming it; runs whenever the freeze succeeded')
    .option('--hook-timeout <seconds>', 'longest a freeze or thaw command may run', '60')
    .option('--json', 'print the report as JSON')
    .action(lazy(load, (m) => m.runBackupRun));

  cmd
    .command('copy <job>')
    .description("a second copy of a job in another library (disk to tape staging): read verified from the job's cartridges, recorded as another copy of the same job")
    .requiredOption('--library <name>', 'library the copy goes to')
    .option('--from-copy <n>', 'the copy to read (default: the first whose cartridges are all present)')
    .option('--drive-timeout <seconds>', 'give up waiting for a free drive of that library after this long (default: wait)')
    .option('--json', 'print the report as JSON')
    .action(lazy(load, (m) => m.runBackupCopy));

  const schedule = cmd.command('schedule').description('the backup processing table: number, date/time, target');
  schedule
    .command('add <source>')
    .description('schedule a backup of a volume')
    .requiredOption('--at <datetime>', 'when: ISO 8601 (2026-12-01T02:00), now, or +N[smhd]')
    .option('--library <name>', 'library to write to')
    .option('--json', 'print the entry as JSON')
    .action(lazy(load, (m) => m.runScheduleAdd));
  schedule
    .command('list')
    .description('list scheduled backups')
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runScheduleList));
  schedule
    .command('run-due')
    .description('run every scheduled backup that is due, and record the outcomes')
    .option('--json', 'print the outcomes as JSON')
    .action(lazy(load, (m) => m.runScheduleRunDue));
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
    .action(lazy(load, (m) => m.runCatalogJobs));
  cmd
    .command('show <job>')
    .description('show a job and the location of every segment')
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runCatalogShow));
  cmd
    .command('rebuild')
    .description('recreate the catalog of jobs by scanning the cartridges')
    .option('--library <name>', 'scan only this library')
    .option('--json', 'print the report as JSON')
    .action(lazy(load, (m) => m.runCatalogRebuild));
  return cmd;
}

/** Registers `restore`. */
export function restoreCommand(): Command {
  return new Command('restore')
    .description('restore a backup job (or a byte range of it) to a file or into a volume, verifying every checksum')
    .argument('<job>', 'job number (see plexus catalog jobs)')
    .option('--to <file>', 'destination file')
    .option('--to-volume <volume>', 'destination volume, written at the same offsets (a primary: its pairs follow, see --mirror)')
    .option('--mirror <how>', 'for a primary: duplex (every restored byte also written to its mirrored plexes) or resync (pairs split first, resynced after)', 'duplex')
    .option('--offset <size>', 'first byte of the source to restore')
    .option('--length <size>', 'bytes to restore')
    .option('--force', 'replace an existing destination file; restore into a volume in use (its NBD clients are cut and its export paused)')
    .option('--json', 'print the report as JSON')
    .action(lazy(load, (m) => m.runRestore));
}
