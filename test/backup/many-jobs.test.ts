/**
 * Many backup jobs at once (issue 13), as separate `plexus backup run` processes: they
 * queue for their streams, oldest first, and none fails for want of a drive; a job that
 * cannot wait (`--wait-streams 0`) or whose wait runs out fails with E_RESOURCES and
 * holds nothing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { Home } from '../../src/home/home.js';
import { VolumeStore } from '../../src/index.js';
import { backupManagerLogFile } from '../../src/resources/log.js';
import { WaitQueue } from '../../src/resources/queue.js';
import { sha256File } from '../../src/util/hash.js';
import { expectFailure, ok, useScratch } from '../cli/cli-helpers.js';
import { CLI, type CliResult, plexus, plexusAsync } from '../helpers/home.js';

const MiB = 1 << 20;
const s = useScratch();
const DIST = path.resolve(path.dirname(CLI), '../dist');

interface Report {
  job: number;
  waitedMs: number;
  waitedForDrive: boolean;
  copies: number[];
}

interface Listed {
  resources: Array<{ name: string; state: string; pid: number | null }>;
}

const home = (): Home => Home.open(s.home);

/** A volume of random bytes made in this process (faster than two CLI runs each); returns its sha256. */
async function volume(name: string, size: number, seed: number): Promise<string> {
  const v = new VolumeStore(home()).create(name, { size });
  await v.fill(0, size, { seed });
  return v.checksum();
}

/** How many "waiting up to" lines the backup-manager log has: jobs that found they must wait. */
function waiting(): number {
  const file = backupManagerLogFile(home());
  return fs.existsSync(file) ? (fs.readFileSync(file, 'utf8').match(/: waiting up to /g) ?? []).length : 0;
}

/** Job numbers in the wait queue, oldest first. */
function queued(): number[] {
  const q = WaitQueue.open(home());
  try {
    return q.waiters().map((w) => w.jobId);
  } finally {
    q.close();
  }
}

/**
 * Resolves once `cond` holds (checked every 20 ms): the processes are waiting on events,
 * not on time. Fails at once, with its output, if one of `runs` ended meanwhile.
 */
async function until(cond: () => boolean, what: string, runs: ReadonlyArray<Promise<CliResult>> = []): Promise<void> {
  let ended: CliResult | undefined;
  for (const r of runs) void r.then((x) => (ended ??= x));
  for (let i = 0; i < 3000; i++) {
    if (cond()) return;
    if (ended) throw new Error(`a job ended before ${what}: exit ${ended.code}: ${ended.stderr}${ended.stdout}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting until ${what} (${queued().length} queued)`);
}

/**
 * A process that claims `drives` drives of library `lib` with their kernel locks and
 * holds them until it is killed: another job's claims, as the queued jobs see them.
 */
async function holder(drives: number): Promise<ChildProcess> {
  const script = path.join(s.dir, 'hold-drives.mjs');
  fs.writeFileSync(
    script,
    `import { Home } from ${JSON.stringify(pathToFileURL(path.join(DIST, 'home/home.js')).href)};
import { Library } from ${JSON.stringify(pathToFileURL(path.join(DIST, 'tape/library.js')).href)};
const lib = Library.open(Home.open(process.env.HOLD_HOME), 'lib');
const claims = [];
for (let i = 0; i < Number(process.env.HOLD_DRIVES); i++) claims.push(await lib.claimDrive({ timeoutMs: 0 }));
process.stdout.write('held\\n');
// The claims stay referenced: a claim collected as garbage would free its lock.
setInterval(() => claims.length, 1 << 30);
`,
  );
  const child = spawn(process.execPath, [script], { env: { ...process.env, HOLD_HOME: s.home, HOLD_DRIVES: String(drives) }, stdio: ['ignore', 'pipe', 'inherit'] });
  holders.add(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
    child.on('exit', (code) => reject(new Error(`the drive holder exited ${code}`)));
  });
  return child;
}

/** Kills a holder; the kernel drops its locks with it. */
async function kill(child: ChildProcess): Promise<void> {
  holders.delete(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

/** Holders still running: a failed test must not leave them (or the jobs queued behind them) behind. */
const holders = new Set<ChildProcess>();
afterEach(async () => {
  for (const c of [...holders]) await kill(c);
});

const inUse = (): string[] => (JSON.parse(ok(s.home, 'resources', 'list', '--json').stdout) as Listed).resources.filter((r) => r.state !== 'available').map((r) => r.name);

function restoredSum(job: number): string {
  const to = path.join(s.dir, `restore-${job}`);
  ok(s.home, 'restore', String(job), '--to', to);
  return sha256File(to);
}

describe('many backup jobs at once', () => {
  it('sixteen jobs on a library of 4 drives: all complete, served oldest first, each waiting its turn', async () => {
    ok(s.home, 'library', 'create', 'lib', '--slots', '24', '--drives', '4', '--cartridge-size', '64M', '--block-size', '64K');
    // Four movers on four switches: two jobs of two streams keep the four drives busy.
    for (const n of [2, 3]) {
      ok(s.home, 'resources', 'add', 'switch', `fc${n}`, '--connects', 'storage,lib');
      ok(s.home, 'resources', 'add', 'server', `server${n}`, '--connects', `fc${n}`);
    }
    const sums = await Promise.all(Array.from({ length: 16 }, (_, i) => volume(`v${i}`, 16 * MiB, i + 1)));
    // Every drive held until all sixteen have queued: they are really started together.
    const gate = await holder(4);
    const runs = sums.map((_, i) => plexusAsync(s.home, 'backup', 'run', `v${i}`, '--mode', 'parallel', '--streams', '2', '--chunk', '4M', '--json'));
    // Each logs its wait once it found it must: after joining the queue, before pausing.
    await until(() => waiting() === 16, 'all sixteen jobs wait', runs);
    const order = queued();
    expect(order).toHaveLength(16);
    await kill(gate);
    const results = await Promise.all(runs);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const reports = results.map((r) => JSON.parse(r.stdout) as Report);
    expect(reports.every((r) => r.waitedMs > 0 && r.waitedForDrive)).toBe(true);
    expect(reports.every((r) => r.copies.length === 2)).toBe(true);
    // Served in queue order: a job's streams are reserved (and logged) only once every
    // older waiter's were, in the transaction that takes it out of the queue.
    const log = fs.readFileSync(backupManagerLogFile(home()), 'utf8');
    const served = [...log.matchAll(/job (\d+): secured stream 0:/g)].map((m) => Number(m[1]));
    expect(served).toEqual(order);
    expect(log.match(/job \d+: secured 2 server streams after waiting [\d.]+ s\n/g)).toHaveLength(16);
    expect(log).not.toMatch(/cannot secure/);
    const c = Catalog.open(home());
    try {
      const jobs = c.jobs();
      expect(jobs).toHaveLength(16);
      expect(jobs.every((j) => j.status === 'done')).toBe(true);
    } finally {
      c.close();
    }
    // Two restores, the first job served and the last.
    for (const r of [reports.find((x) => x.job === order[0])!, reports.find((x) => x.job === order[15])!]) {
      const i = results.findIndex((x) => (JSON.parse(x.stdout) as Report).job === r.job);
      expect(restoredSum(r.job)).toBe(sums[i]);
    }
    expect(queued()).toEqual([]);
    expect(inUse()).toEqual([]);
  }, 120_000);

  it('two jobs each needing both drives of a 2-drive library, started at once: both complete', async () => {
    ok(s.home, 'library', 'create', 'lib', '--slots', '6', '--drives', '2', '--cartridge-size', '32M', '--block-size', '64K');
    const sums = [await volume('a', 4 * MiB, 1), await volume('b', 4 * MiB, 2)];
    const gate = await holder(2);
    const runs = ['a', 'b'].map((v) => plexusAsync(s.home, 'backup', 'run', v, '--mode', 'parallel', '--streams', '2', '--chunk', '1M', '--json'));
    await until(() => waiting() === 2, 'both jobs wait', runs);
    await kill(gate);
    const results = await Promise.all(runs);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const reports = results.map((r) => JSON.parse(r.stdout) as Report);
    expect(reports.map((r) => r.copies)).toEqual([
      [0, 1],
      [0, 1],
    ]);
    expect(restoredSum(reports[0]!.job)).toBe(sums[0]);
    expect(restoredSum(reports[1]!.job)).toBe(sums[1]);
    expect(inUse()).toEqual([]);
  }, 60_000);

  it('--wait-streams 0 fails at once; a bounded wait expires; both with E_RESOURCES, holding nothing; a job that waits carries on when the holder goes', async () => {
    ok(s.home, 'library', 'create', 'lib', '--slots', '6', '--drives', '2', '--cartridge-size', '32M', '--block-size', '64K');
    const sum = await volume('db', 4 * MiB, 3);
    const gate = await holder(1);
    expectFailure(plexus(s.home, 'backup', 'run', 'db', '--mode', 'parallel', '--wait-streams', '0'), 'E_RESOURCES', 'secured 1 of 2 streams: no free drive in library lib (2 drives, 2 in use)');
    // --json: the one line on stderr is the failure (the wait is told on stderr otherwise).
    const late = plexus(s.home, 'backup', 'run', 'db', '--mode', 'chunked', '--chunk', '1M', '--wait-streams', '1', '--json');
    expectFailure(late, 'E_RESOURCES', 'secured 1 of 2 streams: no free drive in library lib (2 drives, 2 in use); gave up after waiting 1');
    expect(late.stderr).toMatch(/^plexus: backup job 2 of db failed: /);
    const listed = JSON.parse(ok(s.home, 'resources', 'list', '--json').stdout) as Listed;
    expect(listed.resources.filter((r) => r.state !== 'available').map((r) => [r.name, r.pid])).toEqual([['lib/drive0', gate.pid]]);
    expect(queued()).toEqual([]);
    const log = fs.readFileSync(backupManagerLogFile(home()), 'utf8');
    expect(log).toMatch(/job 1: cannot secure 2 server streams: secured 1 of 2 streams: no free drive in library lib \(2 drives, 2 in use\); released everything taken\n/);
    expect(log).toMatch(/job 2: waiting up to 1 s for 2 copy device streams \(first in the queue\)/);
    expect(log).toMatch(/job 2: cannot secure 2 copy device streams: .* gave up after waiting 1\.\d\d s \(the stream wait\); released everything taken\n/);
    const c = Catalog.open(home());
    try {
      expect(c.jobs().map((j) => [j.id, j.status, j.error?.slice(0, 12)])).toEqual([
        [2, 'failed', 'E_RESOURCES:'],
        [1, 'failed', 'E_RESOURCES:'],
      ]);
    } finally {
      c.close();
    }
    expectFailure(plexus(s.home, 'backup', 'run', 'db', '--mode', 'parallel', '--wait-streams', 'soon'), 'E_INVALID', '--wait-streams');
    // The default wait: the job queues and carries on once the holder is gone.
    const run = plexusAsync(s.home, 'backup', 'run', 'db', '--mode', 'chunked', '--chunk', '1M', '--json');
    await until(() => waiting() === 2, 'the third job waits', [run]);
    await kill(gate);
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(backupManagerLogFile(home()), 'utf8')).toMatch(/job 3: waiting up to 600 s for 2 copy device streams \(first in the queue\)/);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.waitedMs).toBeGreaterThan(0);
    expect(restoredSum(report.job)).toBe(sum);
    expect(inUse()).toEqual([]);
  }, 60_000);
});
