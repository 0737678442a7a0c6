/**
 * Processes that die or are interrupted, through the CLI: Ctrl-C (SIGINT) during
 * `restore` and `catalog rebuild` cancels cleanly (exit 130, one line, nothing
 * half-written); a SIGKILLed `backup run` or `schedule run-due` is settled by the next
 * process that opens the catalog. The CLI runs from dist/: `npm run build:ts` first.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Home } from '../../src/home/home.js';
import { Library } from '../../src/tape/library.js';
import { checksum, ok, sha256, useScratch } from '../cli/cli-helpers.js';
import { CLI } from '../helpers/home.js';

const require = createRequire(import.meta.url);
const s = useScratch();
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** A running `plexus` child: its stderr so far, a wait for a line, its exit. */
function start(...args: string[]): { child: ChildProcess; stderr: () => string; waitFor: (re: RegExp) => Promise<void>; exit: Promise<{ code: number | null; signal: string | null }> } {
  const child = spawn(process.execPath, [CLI, '--home', s.home, ...args], { env: { ...process.env, PLEXUS_HOME: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  const waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of waiters.splice(0)) {
      if (w.re.test(err)) w.resolve();
      else waiters.push(w);
    }
  });
  child.stdout!.resume();
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const waitFor = (re: RegExp): Promise<void> =>
    new Promise((resolve, reject) => {
      if (re.test(err)) return resolve();
      waiters.push({ re, resolve });
      void exit.then(() => reject(new Error(`plexus ${args.join(' ')} exited before printing ${re}: ${err}`)));
    });
  return { child, stderr: () => err, waitFor, exit };
}

/** A library of 4 MiB cartridges and a 10 MiB volume backed up across three of them; returns the job's cartridges in order. */
function backedUp(): { sum: string; cartridges: string[] } {
  ok(s.home, 'library', 'create', 'lib', '--slots', '6', '--drives', '2', '--cartridge-size', '4M', '--block-size', '64K');
  ok(s.home, 'volume', 'create', 'db', '--size', '10M');
  ok(s.home, 'volume', 'write', 'db', '--random', '10M', '--seed', '7');
  ok(s.home, 'backup', 'run', 'db');
  const shown = JSON.parse(ok(s.home, 'catalog', 'show', '1', '--json').stdout) as { segments: Array<{ barcode: string }> };
  return { sum: checksum(s.home, 'db'), cartridges: [...new Set(shown.segments.map((x) => x.barcode))] };
}

/** Holds cartridge `barcode` of library lib from this process, as a job that has it loaded would. */
function holdCartridge(barcode: string): { release: () => void } {
  const lock = Library.open(Home.open(s.home), 'lib').tryClaimCartridge(barcode);
  if (!lock) throw new Error(`cartridge ${barcode} is taken`);
  return lock;
}

describe('Ctrl-C', () => {
  it('during a restore: exit 130, one line, no destination and no .plexus-partial left', async () => {
    const { sum, cartridges } = backedUp();
    expect(cartridges.length).toBeGreaterThanOrEqual(3);
    const to = path.join(s.dir, 'db.out');
    // The restore reads the first cartridge into its partial file, then waits for the second.
    const held = holdCartridge(cartridges[1]!);
    try {
      const p = start('restore', '1', '--to', to);
      await p.waitFor(new RegExp(`waiting for cartridge ${cartridges[1]}`));
      expect(p.stderr()).toContain(`loaded ${cartridges[0]}`);
      expect(fs.existsSync(`${to}.plexus-partial`)).toBe(true);
      p.child.kill('SIGINT');
      const r = await p.exit;
      expect(r).toEqual({ code: 130, signal: null });
      const lines = p.stderr().trim().split('\n');
      expect(lines.at(-1)).toBe(`plexus: restore of job 1 cancelled: nothing was written to ${to} (E_CANCELLED)`);
    } finally {
      held.release();
    }
    expect(fs.readdirSync(s.dir).filter((f) => f.startsWith('db.out'))).toEqual([]);
    // The drives and cartridges it held are free again: a restore now succeeds.
    ok(s.home, 'restore', '1', '--to', to);
    expect(fs.existsSync(`${to}.plexus-partial`)).toBe(false);
    expect(sha256(fs.readFileSync(to))).toBe(sum);
  });

  it('during a catalog rebuild: exit 130, one line, the catalog unchanged', async () => {
    const { cartridges } = backedUp();
    const jobs = (): unknown => JSON.parse(ok(s.home, 'catalog', 'jobs', '--json').stdout);
    // The catalog forgets the job; a rebuild would bring it back.
    for (const f of ['catalog.db', 'catalog.db-wal', 'catalog.db-shm']) fs.rmSync(path.join(s.home, f), { force: true });
    expect(jobs()).toEqual([]);
    const held = holdCartridge(cartridges[1]!);
    try {
      const p = start('catalog', 'rebuild');
      await p.waitFor(new RegExp(`waiting for cartridge ${cartridges[1]}`));
      p.child.kill('SIGINT');
      expect(await p.exit).toEqual({ code: 130, signal: null });
      expect(p.stderr().trim().split('\n').at(-1)).toBe('plexus: catalog rebuild cancelled: the catalog is unchanged (E_CANCELLED)');
    } finally {
      held.release();
    }
    expect(jobs()).toEqual([]);
    const rb = JSON.parse(ok(s.home, 'catalog', 'rebuild', '--json').stdout) as { jobs: number; problems: string[] };
    expect(rb).toMatchObject({ jobs: 1, problems: [] });
    expect((jobs() as Array<{ status: string }>).map((j) => j.status)).toEqual(['done']);
  });
});

describe('SIGKILL', () => {
  /** A library with one drive, taken by this process so a job waits for it (its row is `running`). */
  async function driveTaken(): Promise<{ release: () => void }> {
    ok(s.home, 'library', 'create', 'lib', '--slots', '2', '--drives', '1', '--cartridge-size', '8M', '--block-size', '64K');
    ok(s.home, 'volume', 'create', 'db', '--size', '1M');
    return Library.open(Home.open(s.home), 'lib').claimDrive();
  }
  const jobs = (): Array<{ id: number; status: string; pid: number | null; error: string | null }> => JSON.parse(ok(s.home, 'catalog', 'jobs', '--json').stdout);
  const schedule = (): Array<{ id: number; status: string; outcome: string | null }> => JSON.parse(ok(s.home, 'backup', 'schedule', 'list', '--json').stdout);
  /** Gives the job's row a pid that is alive (this process), as if the dead one's pid had been reused. */
  function reusePid(job: number): void {
    const Database = require('better-sqlite3') as typeof import('better-sqlite3');
    const db = new Database(path.join(s.home, 'catalog.db'));
    db.prepare(`UPDATE jobs SET pid = ? WHERE id = ?`).run(process.pid, job);
    db.close();
  }

  it('a killed backup is settled incomplete by the next open, even when its pid was reused', async () => {
    const drive = await driveTaken();
    try {
      const p = start('backup', 'run', 'db');
      await p.waitFor(/busy; waiting for one/);
      // While it lives, another process sees it running.
      expect(jobs().map((j) => j.status)).toEqual(['running']);
      p.child.kill('SIGKILL');
      expect((await p.exit).signal).toBe('SIGKILL');
      reusePid(1);
      expect(fs.existsSync(path.join(s.home, 'locks', 'job-1.lock'))).toBe(true);
      expect(jobs()).toEqual([expect.objectContaining({ id: 1, status: 'incomplete', pid: null, error: 'the backup process died before the job ended' })]);
      // The dead job's lock file goes with its settlement.
      expect(fs.readdirSync(path.join(s.home, 'locks'))).toEqual([]);
    } finally {
      drive.release();
    }
    // The drive and the catalog are free: the next backup runs.
    ok(s.home, 'backup', 'run', 'db');
    expect(jobs().map((j) => [j.id, j.status])).toEqual([
      [2, 'done'],
      [1, 'incomplete'],
    ]);
  });

  it('a killed schedule run-due: its entry whose job started is failed, not left running; the rest are due again', async () => {
    const drive = await driveTaken();
    ok(s.home, 'volume', 'create', 'other', '--size', '1M');
    ok(s.home, 'backup', 'schedule', 'add', 'db', '--at', '2020-01-01T00:00:00Z');
    ok(s.home, 'backup', 'schedule', 'add', 'other', '--at', '2020-01-01T00:00:01Z');
    try {
      const p = start('backup', 'schedule', 'run-due');
      await p.waitFor(/busy; waiting for one/);
      expect(schedule().map((r) => r.status)).toEqual(['running', 'running']);
      p.child.kill('SIGKILL');
      expect((await p.exit).signal).toBe('SIGKILL');
      reusePid(1);
      expect(schedule()).toEqual([
        expect.objectContaining({ id: 1, status: 'failed', outcome: 'the run-due process died during backup job 1 (incomplete)' }),
        expect.objectContaining({ id: 2, status: 'pending', outcome: 'the run-due process died before starting it: due again' }),
      ]);
      expect(jobs().map((j) => [j.id, j.status])).toEqual([[1, 'incomplete']]);
    } finally {
      drive.release();
    }
    expect(ok(s.home, 'backup', 'schedule', 'run-due').stdout).toBe('backup 2 of other: done, job 2\n');
    expect(schedule().map((r) => r.status)).toEqual(['failed', 'done']);
  });
});
