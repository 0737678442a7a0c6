/** `plexus library create --disk`, `library import`, `library show|list` of a disk library and `backup copy`, as spawned processes. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checksum, expectFailure, ok, sha256, useScratch } from '../cli/cli-helpers.js';
import { plexus } from '../helpers/home.js';

const s = useScratch();

function volume(): string {
  ok(s.home, 'volume', 'create', 'db', '--size', '10M');
  ok(s.home, 'volume', 'write', 'db', '--random', '10M', '--seed', '4');
  return checksum(s.home, 'db');
}

describe('plexus library --disk', () => {
  it('creates a disk library, backs up into it, shows its directory and space, and copies the job to tape', () => {
    const dir = path.join(s.dir, 'disk');
    const created = JSON.parse(ok(s.home, 'library', 'create', 'd', '--disk', dir, '--volume-size', '4M', '--block-size', '64K', '--drives', '2', '--json').stdout) as {
      kind: string;
      dir: string;
      drives: number;
      cartridges: Array<{ barcode: string }>;
    };
    expect(created).toMatchObject({ kind: 'disk', dir: fs.realpathSync(dir), drives: 2 });
    expect(created.cartridges.map((c) => c.barcode)).toEqual(['DXX000001']);
    volume();
    const backup = JSON.parse(ok(s.home, 'backup', 'run', 'db', '--library', 'd', '--json').stdout) as { job: number; cartridges: string[] };
    expect(backup.cartridges).toEqual(['DXX000001', 'DXX000002', 'DXX000003']);

    const show = JSON.parse(ok(s.home, 'library', 'show', 'd', '--json').stdout) as {
      kind: string;
      cartridgeDir: string;
      cartridges: number;
      bytes: number;
      allocatedBytes: number;
      freeBytes: number;
      totalBytes: number;
    };
    expect(show).toMatchObject({ kind: 'disk', cartridgeDir: fs.realpathSync(dir), cartridges: 3 });
    // The data, and the catalog files behind each segment.
    expect(show.bytes).toBeGreaterThanOrEqual(10 << 20);
    expect(show.allocatedBytes).toBeGreaterThanOrEqual(show.bytes);
    expect(show.freeBytes).toBeGreaterThan(0);
    expect(show.totalBytes).toBeGreaterThanOrEqual(show.freeBytes);
    expect(ok(s.home, 'library', 'show', 'd').stdout).toMatch(/kind:\s+disk[\s\S]*cartridge directory:\s+\S+disk[\s\S]*free:\s+\S+/);
    expect(ok(s.home, 'library', 'list').stdout).toMatch(/\bd\s+disk\s+-\s+2\b.*disk\n/);

    // The staging copy to tape, recorded as copy 1 of the same job.
    ok(s.home, 'library', 'create', 't', '--slots', '2', '--drives', '1', '--cartridge-size', '16M', '--block-size', '64K');
    const copied = JSON.parse(ok(s.home, 'backup', 'copy', String(backup.job), '--library', 't', '--json').stdout) as { copy: number; library: string; bytes: number };
    expect(copied).toMatchObject({ copy: 1, library: 't', bytes: 10 << 20 });
    expect(ok(s.home, 'catalog', 'show', String(backup.job)).stdout).toMatch(/copy 0\.0 on d \(stream 0, done\); copy 1\.0 on t \(stream 0, done\)/);
    expectFailure(plexus(s.home, 'backup', 'copy', String(backup.job), '--library', 't'), 'E_EXISTS', 'copy 1');
  });

  it('imports the directory into a new home and restores from it', () => {
    const dir = path.join(s.dir, 'disk');
    ok(s.home, 'library', 'create', 'd', '--disk', dir, '--volume-size', '4M', '--block-size', '64K');
    const sum = volume();
    ok(s.home, 'backup', 'run', 'db', '--library', 'd');
    const fresh = path.join(s.dir, 'home2');
    const imported = JSON.parse(ok(fresh, 'library', 'import', 'again', '--disk', dir, '--json').stdout) as { library: { kind: string }; rebuild: { jobs: number; problems: string[] } };
    expect(imported).toMatchObject({ library: { kind: 'disk' }, rebuild: { jobs: 1, problems: [] } });
    const out = path.join(s.dir, 'db.img');
    ok(fresh, 'restore', '1', '--to', out);
    expect(sha256(fs.readFileSync(out))).toBe(sum);
  });

  it('refuses bad input with one clear line', () => {
    const dir = path.join(s.dir, 'disk');
    expectFailure(plexus(s.home, 'library', 'create', 'x', '--disk', dir, '--slots', '3'), 'E_INVALID', '--slots');
    expectFailure(plexus(s.home, 'library', 'create', 'x', '--slots', '1', '--drives', '1'), 'E_INVALID', '--cartridge-size');
    expectFailure(plexus(s.home, 'library', 'create', 'x', '--slots', '1', '--drives', '1', '--cartridge-size', '4M', '--volume-size', '4M'), 'E_INVALID', '--volume-size');
    ok(s.home, 'init');
    expectFailure(plexus(s.home, 'library', 'create', 'x', '--disk', path.join(s.home, 'volumes', 'x')), 'E_INVALID', 'inside the home');
    // 16 blocks of the default 1 MiB at least.
    expectFailure(plexus(s.home, 'library', 'create', 'x', '--disk', dir, '--volume-size', '8M'), 'E_INVALID', 'cartridge size');
    expectFailure(plexus(s.home, 'library', 'import', 'x', '--disk', path.join(s.dir, 'nothing')), 'E_NOENT', 'nothing');
    ok(s.home, 'library', 'create', 'd', '--disk', dir, '--volume-size', '4M', '--block-size', '64K');
    expectFailure(plexus(s.home, 'library', 'create', 'e', '--disk', dir), 'E_INVALID', 'overlaps');
    expectFailure(plexus(s.home, 'backup', 'copy', '1', '--library', 'd'), 'E_NOENT', 'job 1');
    volume();
    ok(s.home, 'backup', 'run', 'db', '--library', 'd');
    expectFailure(plexus(s.home, 'backup', 'copy', '1', '--library', 'nope'), 'E_NOENT', 'nope');
    expectFailure(plexus(s.home, 'backup', 'copy', '1', '--library', 'd'), 'E_INVALID', 'another library');
    expectFailure(plexus(s.home, 'backup', 'copy', 'x', '--library', 'd'), 'E_INVALID', 'job number');
  });
});
