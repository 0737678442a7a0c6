/** Declares `plexus backup run|copy|schedule|policy|plan`, `plexus catalog jobs|show|rebuild|expire`, `plexus restore` (run by ../commands/backup.ts and ../commands/policy.ts). */
import { Command, Option } from '../commander.js';
import { lazy } from '../lazy.js';

const load = () => import('../commands/backup.js');
const loadPolicy = () => import('../commands/policy.js');

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
    .option('--pool <volumes>', 'with --from-mirror, for a primary with no pair in PAIR: borrow the first free volume of this comma-separated list, pair, split, back up, and give it back')
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
    .description("run every scheduled backup that is due and every policy's due backups (as drives allow), and record the outcomes")
    .option('--json', 'print the outcomes as JSON')
    .addOption(new Option('--now <datetime>', 'run as if it were this time (tests)').hideHelp())
    .action(lazy(load, (m) => m.runScheduleRunDue));

  policyCommands(cmd);
  cmd
    .command('plan')
    .description("the coming windows' policy backups: data, estimated time at the measured throughput, start, drive; warns when a window is too short")
    .option('--now <datetime>', 'plan as of this time (ISO 8601, now, or +N[smhd])')
    .option('--json', 'print the plan as JSON')
    .action(lazy(loadPolicy, (m) => m.runPlan));
  return cmd;
}

/** Registers `backup policy add|list|show|remove|enable|disable`. */
function policyCommands(cmd: Command): void {
  const policy = cmd.command('policy').description('recurring backups of a data set: how often, in which time window, where to, how many jobs to keep');
  policy
    .command('add <name>')
    .description('add a backup policy: the agent (or schedule run-due from cron) fires it')
    .requiredOption('--volumes <volumes...>', 'the volumes of the data set')
    .requiredOption('--every <interval>', 'how often each volume is backed up: 30m, 1h, 6h, 12h (dividing a day), 1d, 7d')
    .option('--window <HH:MM-HH:MM>', 'local time window backups start in (may cross midnight, e.g. 22:00-06:00; default: any time)')
    .option('--library <name>', 'library to write to')
    .option('--disk <dir>', 'the disk library keeping its cartridges in this directory (library create NAME --disk DIR)')
    .option('--mode <mode>', 'single, parallel or chunked (as backup run)', 'single')
    .option('--streams <n>', 'streams of a parallel or chunked backup (default 2)')
    .option('--keep <n>', 'complete jobs kept per volume; older ones expire and their cartridges are freed (default: all)')
    .option('--disabled', 'add it disabled (backup policy enable NAME turns it on)')
    .option('--json', 'print the policy as JSON')
    .action(lazy(loadPolicy, (m) => m.runPolicyAdd));
  policy
    .command('list')
    .description('list backup policies')
    .option('--json', 'print JSON')
    .action(lazy(loadPolicy, (m) => m.runPolicyList));
  policy
    .command('show <name>')
    .description("a policy, each volume's last run and next due slot, and its recent runs")
    .option('--json', 'print JSON')
    .action(lazy(loadPolicy, (m) => m.runPolicyShow));
  policy
    .command('remove <name>')
    .description('remove a policy and its run history (its jobs stay)')
    .action(lazy(loadPolicy, (m) => m.runPolicyRemove));
  policy
    .command('enable <name>')
    .description('turn a policy on')
    .action(lazy(loadPolicy, (m) => m.runPolicyEnable));
  policy
    .command('disable <name>')
    .description('turn a policy off: it fires nothing until enabled')
    .action(lazy(loadPolicy, (m) => m.runPolicyDisable));
}

/** Registers `catalog jobs|show|rebuild`. */
export function catalogCommand(): Command {
  const cmd = new Command('catalog').description('what was backed up and where it lies');
  cmd
    .command('jobs')
    .description('list backup jobs, newest first')
    .option('--target <volume>', 'only jobs of this volume')
    .option('--status <status>', 'only jobs in this status (running, done, failed, incomplete, expired)')
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
  cmd
    .command('expire')
    .description("run the policies' retention: expire jobs beyond each policy's --keep, free cartridges left with expired jobs only")
    .option('--policy <name>', 'only this policy')
    .option('--dry-run', 'show what would be expired and freed; change nothing')
    .option('--json', 'print the report as JSON')
    .action(lazy(loadPolicy, (m) => m.runCatalogExpire));
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
