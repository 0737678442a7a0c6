import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, plexus } from '../helpers/home.js';
import { checksum, expectFailure, ok, sha256, useScratch } from './cli-helpers.js';

const s = useScratch();

interface Report {
  job: number;
  mode: string;
  bytes: number;
  locations: number;
  copies: number[];
  streams: Array<{ stream: number; mover: string; status: string; error?: string }>;
}

interface Listed {
  resources: Array<{ name: string; state: string; jobId: number | null }>;
}

function setup(size = '8M'): void {
  ok(s.home, 'library', 'create', 'lib', '--slots', '4', '--drives', '2', '--cartridge-size', '32M', '--block-size', '64K');
  ok(s.home, 'volume', 'create', 'db', '--size', size);
  ok(s.home, 'volume', 'write', 'db', '--random', size, '--seed', '7');
}

const inUse = (): string[] => (JSON.parse(ok(s.home, 'resources', 'list', '--json').stdout) as Listed).resources.filter((r) => r.state !== 'available').map((r) => r.name);

describe('plexus backup run --mode parallel|chunked', () => {
  it('chunked: a hung copy device times out, the job finishes on the other, and restores byte-identical', () => {
    setup();
    const sum = checksum(s.home, 'db');
    ok(s.home, 'fault', 'inject', 'xcopy0', '--hang', '--after', '3M');
    expect(ok(s.home, 'fault', 'list').stdout).toMatch(/xcopy0\s+hang\s+3145728/);
    const r = plexus(s.home, 'backup', 'run', 'db', '--mode', 'chunked', '--chunk', '1M', '--timeout', '0.3');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^job \d+: backed up db \(8\.00 MiB, chunked\)/);
    expect(r.stdout).toMatch(/\n0\s+xcopy0\s+lib\/drive0\s+fc0\s+3\.00 MiB\s+failed: E_TIMEOUT: segment command 3 did not complete within 300 ms/);
    expect(r.stdout).toMatch(/\n1\s+xcopy1\s+lib\/drive1\s+fc1\s+5\.00 MiB\s+done/);
    expect(r.stderr).toMatch(/stream 0 \(copy device xcopy0\) stopped at command 3: E_TIMEOUT/);
    const job = Number(/^job (\d+)/.exec(r.stdout)![1]);
    const shown = JSON.parse(ok(s.home, 'catalog', 'show', String(job), '--json').stdout) as { locations: Array<{ seq: number; stream: number }> };
    expect(shown.locations.map((l) => [l.seq, l.stream])).toEqual([
      [0, 0],
      [1, 1],
    ]);
    const to = path.join(s.dir, 'db.out');
    ok(s.home, 'restore', String(job), '--to', to);
    expect(sha256(fs.readFileSync(to))).toBe(sum);
    expect(inUse()).toEqual([]);
  });

  it('parallel: --json reports each stream; two copies in the catalog', () => {
    setup('4M');
    const r = JSON.parse(ok(s.home, 'backup', 'run', 'db', '--mode', 'parallel', '--chunk', '1M', '--json').stdout) as Report;
    expect(r).toMatchObject({ mode: 'parallel', bytes: 4 << 20, copies: [0, 1] });
    expect(r.streams.map((x) => [x.mover, x.status])).toEqual([
      ['server0', 'done'],
      ['server1', 'done'],
    ]);
  });

  it('bad options get one clear line', () => {
    setup('1M');
    expectFailure(plexus(s.home, 'backup', 'run', 'db', '--mode', 'striped'), 'E_INVALID', '--mode');
    expectFailure(plexus(s.home, 'backup', 'run', 'db', '--mode', 'chunked', '--timeout', 'soon'), 'E_INVALID', '--timeout');
    expectFailure(plexus(s.home, 'backup', 'run', 'db', '--mode', 'chunked', '--chunk', '100K'), 'E_INVALID', 'multiple of the block size');
    expectFailure(plexus(s.home, 'backup', 'run', 'db', '--mode', 'parallel', '--streams', '3'), 'E_RESOURCES', 'secured 2 of 3 streams');
    expect(inUse()).toEqual([]);
  });

  it('Ctrl-C (SIGINT) cancels a chunked job: E_CANCELLED, nothing moved to the next device, everything released', async () => {
    setup();
    ok(s.home, 'fault', 'inject', 'xcopy0', '--hang', '--after', '2M');
    const child = spawn(process.execPath, [CLI, '--home', s.home, 'backup', 'run', 'db', '--mode', 'chunked', '--chunk', '1M', '--timeout', '600'], {
      env: { ...process.env, PLEXUS_HOME: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    const deadline = Date.now() + 20_000;
    while (!inUse().includes('xcopy0')) {
      if (Date.now() > deadline) throw new Error('the backup never secured its streams');
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/\(E_CANCELLED\)\n$/);
    expect(stderr).not.toMatch(/moving \d+ commands/);
    expect(inUse()).toEqual([]);
    const jobs = JSON.parse(ok(s.home, 'catalog', 'jobs', '--json').stdout) as Array<{ status: string }>;
    expect(jobs).toEqual([expect.objectContaining({ status: 'failed' })]);
  });

  it('a chunked job killed mid-way: its reservations are released on the next start, the job is incomplete, a new backup restores byte-identical', async () => {
    setup();
    const sum = checksum(s.home, 'db');
    // The device hangs with no timeout in sight: the job sits holding its streams.
    ok(s.home, 'fault', 'inject', 'xcopy0', '--hang', '--after', '2M');
    const child = spawn(process.execPath, [CLI, '--home', s.home, 'backup', 'run', 'db', '--mode', 'chunked', '--chunk', '1M', '--timeout', '600'], {
      env: { ...process.env, PLEXUS_HOME: '' },
      stdio: 'ignore',
    });
    const exited = new Promise((r) => child.once('exit', r));
    const deadline = Date.now() + 20_000;
    while (!inUse().includes('xcopy0')) {
      if (Date.now() > deadline) throw new Error('the backup never secured its streams');
      await new Promise((r) => setTimeout(r, 100));
    }
    // Let it write its first chunks, then kill it hard.
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGKILL');
    await exited;

    // The next start finds the dead job's reservations and releases them.
    expect(inUse()).toEqual([]);
    const jobs = JSON.parse(ok(s.home, 'catalog', 'jobs', '--json').stdout) as Array<{ id: number; status: string }>;
    expect(jobs).toEqual([expect.objectContaining({ status: 'incomplete' })]);
    expect(fs.readFileSync(path.join(s.home, 'logs', 'backup-manager.log'), 'utf8')).toMatch(/released/);

    ok(s.home, 'fault', 'clear');
    const again = JSON.parse(ok(s.home, 'backup', 'run', 'db', '--mode', 'chunked', '--chunk', '1M', '--json').stdout) as Report;
    expect(again.streams[0]!.status).toBe('done');
    const to = path.join(s.dir, 'db.out');
    ok(s.home, 'restore', String(again.job), '--to', to);
    expect(sha256(fs.readFileSync(to))).toBe(sum);
  });
});
