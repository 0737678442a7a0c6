import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { plexus } from '../helpers/home.js';
import { checksum, expectFailure, ok, sha256, useScratch } from './cli-helpers.js';

const s = useScratch();

function setup(slots = 6, drives = 1, cartridge = '4M'): void {
  ok(s.home, 'library', 'create', 'lib', '--slots', String(slots), '--drives', String(drives), '--cartridge-size', cartridge, '--block-size', '64K');
  ok(s.home, 'volume', 'create', 'db', '--size', '10M');
  ok(s.home, 'volume', 'write', 'db', '--random', '10M', '--seed', '42');
}

describe('plexus library / tape', () => {
  it('creates a library and lists it, its drives and cartridges', () => {
    setup(3, 2, '8M');
    const libs = JSON.parse(ok(s.home, 'library', 'list', '--json').stdout) as Array<{ name: string; slots: number; drives: number; scratch: number }>;
    expect(libs).toEqual([expect.objectContaining({ name: 'lib', slots: 3, drives: 2, scratch: 3 })]);
    const show = JSON.parse(ok(s.home, 'library', 'show', 'lib', '--json').stdout) as { drives: Array<{ busy: boolean }>; media: Array<{ barcode: string; state: string }> };
    expect(show.drives).toHaveLength(2);
    expect(show.drives.every((d) => !d.busy)).toBe(true);
    expect(show.media.map((m) => m.state)).toEqual(['scratch', 'scratch', 'scratch']);
    const tapes = JSON.parse(ok(s.home, 'tape', 'list', '--json').stdout) as Array<{ barcode: string; library: string; slot: number }>;
    expect(tapes.map((t) => [t.barcode, t.slot])).toEqual(show.media.map((m, i) => [m.barcode, i]));
    expect(ok(s.home, 'tape', 'list').stdout).toMatch(/BARCODE\s+LIBRARY\s+SLOT\s+STATE/);
  });

  it('refuses bad library input with one clear line', () => {
    expectFailure(plexus(s.home, 'library', 'create', 'x', '--slots', '0', '--drives', '1', '--cartridge-size', '1M'), 'E_INVALID', 'slots');
    expectFailure(plexus(s.home, 'library', 'create', 'x', '--slots', '1', '--drives', '1', '--cartridge-size', '1K'), 'E_INVALID', 'cartridge size');
    ok(s.home, 'library', 'create', 'x', '--slots', '1', '--drives', '1', '--cartridge-size', '8M');
    expectFailure(plexus(s.home, 'library', 'create', 'x', '--slots', '1', '--drives', '1', '--cartridge-size', '8M'), 'E_EXISTS', 'x');
    expectFailure(plexus(s.home, 'library', 'show', 'nope'), 'E_NOENT', 'nope');
  });
});

describe('plexus backup / catalog / restore', () => {
  it('backs up across cartridges, lists the job, restores it whole and by range', () => {
    setup();
    const sum = checksum(s.home, 'db');
    const job = JSON.parse(ok(s.home, 'backup', 'run', 'db', '--json').stdout) as { job: number; cartridges: string[]; bytes: number };
    expect(job.bytes).toBe(10 << 20);
    expect(job.cartridges.length).toBeGreaterThanOrEqual(3);
    const jobs = JSON.parse(ok(s.home, 'catalog', 'jobs', '--json').stdout) as Array<{ id: number; target: string; status: string }>;
    expect(jobs).toEqual([expect.objectContaining({ id: job.job, target: 'db', status: 'done' })]);
    const shown = JSON.parse(ok(s.home, 'catalog', 'show', String(job.job), '--json').stdout) as { segments: Array<{ barcode: string; sourceOffset: number; length: number; checksum: string }> };
    expect([...new Set(shown.segments.map((x) => x.barcode))]).toEqual(job.cartridges);
    expect(ok(s.home, 'catalog', 'show', String(job.job)).stdout).toContain(job.cartridges[0]);

    const to = path.join(s.dir, 'db.out');
    ok(s.home, 'restore', String(job.job), '--to', to);
    expect(sha256(fs.readFileSync(to))).toBe(sum);
    expectFailure(plexus(s.home, 'restore', String(job.job), '--to', to), 'E_EXISTS', to);
    ok(s.home, 'restore', String(job.job), '--to', to, '--force');

    const range = path.join(s.dir, 'range.out');
    const r = JSON.parse(ok(s.home, 'restore', String(job.job), '--to', range, '--offset', '5M', '--length', '64K', '--json').stdout) as { loaded: string[]; bytes: number };
    expect(r.bytes).toBe(64 * 1024);
    const seg = shown.segments.find((x) => x.sourceOffset <= 5 << 20 && x.sourceOffset + x.length >= (5 << 20) + 65536)!;
    expect(r.loaded).toEqual([seg.barcode]);
    expect(sha256(fs.readFileSync(range))).toBe(checksum(s.home, 'db', '--offset', '5M', '--length', '64K'));
  });

  it('rebuilds a deleted catalog from the cartridges', () => {
    setup();
    const sum = checksum(s.home, 'db');
    const job = JSON.parse(ok(s.home, 'backup', 'run', 'db', '--json').stdout) as { job: number };
    for (const f of ['catalog.db', 'catalog.db-wal', 'catalog.db-shm']) fs.rmSync(path.join(s.home, f), { force: true });
    expect(ok(s.home, 'catalog', 'jobs').stdout).toBe('no backup jobs\n');
    const rb = JSON.parse(ok(s.home, 'catalog', 'rebuild', '--json').stdout) as { jobs: number; problems: string[] };
    expect(rb).toMatchObject({ jobs: 1, problems: [] });
    const to = path.join(s.dir, 'db.out');
    ok(s.home, 'restore', String(job.job), '--to', to);
    expect(sha256(fs.readFileSync(to))).toBe(sum);
  });

  it('runs the schedule: what is due runs once, its outcome is recorded', () => {
    setup();
    ok(s.home, 'backup', 'schedule', 'add', 'db', '--at', '2020-01-01T00:00:00Z');
    ok(s.home, 'backup', 'schedule', 'add', 'db', '--at', '+1d');
    expectFailure(plexus(s.home, 'backup', 'schedule', 'add', 'db', '--at', 'tomorrowish'), 'E_INVALID', 'tomorrowish');
    expectFailure(plexus(s.home, 'backup', 'schedule', 'add', 'nope', '--at', 'now'), 'E_NOENT', 'nope');
    const ran = JSON.parse(ok(s.home, 'backup', 'schedule', 'run-due', '--json').stdout) as Array<{ schedule: number; status: string; job: number }>;
    expect(ran).toEqual([expect.objectContaining({ schedule: 1, status: 'done' })]);
    expect(ok(s.home, 'backup', 'schedule', 'run-due').stdout).toBe('nothing due\n');
    const list = JSON.parse(ok(s.home, 'backup', 'schedule', 'list', '--json').stdout) as Array<{ id: number; status: string; outcome: string | null }>;
    expect(list.map((e) => [e.id, e.status, e.outcome])).toEqual([
      [1, 'done', `job ${ran[0]!.job}`],
      [2, 'pending', null],
    ]);
  });

  it('bad input: unknown job, range past the end, unknown volume, no library', () => {
    ok(s.home, 'init');
    expectFailure(plexus(s.home, 'backup', 'run', 'db'), 'E_NOENT', 'db');
    ok(s.home, 'volume', 'create', 'db', '--size', '1M');
    expectFailure(plexus(s.home, 'backup', 'run', 'db'), 'E_NOENT', 'library');
    ok(s.home, 'library', 'create', 'lib', '--slots', '2', '--drives', '1', '--cartridge-size', '8M');
    const job = JSON.parse(ok(s.home, 'backup', 'run', 'db', '--json').stdout) as { job: number };
    expectFailure(plexus(s.home, 'restore', '99', '--to', path.join(s.dir, 'x')), 'E_NOENT', '99');
    expectFailure(plexus(s.home, 'restore', String(job.job), '--to', path.join(s.dir, 'x'), '--offset', '1M', '--length', '1'), 'E_RANGE');
    expectFailure(plexus(s.home, 'catalog', 'jobs', '--status', 'weird'), 'E_INVALID', 'weird');
  });
});

describe('plexus library rm', () => {
  it('refuses to remove a library holding backups unless forced; then the catalog forgets them', () => {
    setup();
    const job = JSON.parse(ok(s.home, 'backup', 'run', 'db', '--json').stdout) as { job: number };
    expectFailure(plexus(s.home, 'library', 'rm', 'lib'), 'E_BUSY', `(${job.job})`, '--force');
    expect(ok(s.home, 'library', 'rm', 'lib', '--force').stdout).toContain(`jobs ${job.job}`);
    expect(ok(s.home, 'catalog', 'jobs').stdout).toBe('no backup jobs\n');
    expect(ok(s.home, 'library', 'list').stdout).toBe('no libraries\n');
    expect(fs.existsSync(path.join(s.home, 'libraries', 'lib'))).toBe(false);
    expectFailure(plexus(s.home, 'library', 'rm', 'lib'), 'E_NOENT', 'lib');
  });
});
