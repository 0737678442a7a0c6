import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { plexus, plexusAsync } from '../helpers/home.js';
import { checksum, expectFailure, listNames, ok, sha256, useScratch } from './cli-helpers.js';

const s = useScratch();

interface PairInfo {
  primary: string;
  secondary: string;
  state: string;
}

describe('plexus demo', () => {
  it('runs the main job end to end on a fresh home: mirror, split, backup across cartridges, restore, resync', async () => {
    const r = await plexusAsync(s.home, 'demo', '--size', '8M');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/demo complete: 13 checks verified in /);
    expect(r.stdout).toContain(s.home);
    expect(r.stdout).not.toMatch(/fail/i);

    // What it leaves is real and consistent: a pair back in PAIR, a job in the catalog,
    // a restored file equal to the split image the job holds.
    expect(listNames(s.home)).toEqual(['demo-db', 'demo-mirror']);
    const pairs = JSON.parse(ok(s.home, 'pair', 'display', '--json').stdout) as PairInfo[];
    expect(pairs.map((p) => [p.primary, p.secondary, p.state])).toEqual([['demo-db', 'demo-mirror', 'PAIR']]);
    // The mirror keeps its access list (backup-host) while mirrored, when no host may
    // read it: compare its data file.
    expect(checksum(s.home, 'demo-db')).toBe(sha256(fs.readFileSync(path.join(s.home, 'volumes', 'demo-mirror.img'))));
    expectFailure(plexus(s.home, '--host', 'backup-host', 'volume', 'checksum', 'demo-mirror'), 'E_ACCESS', 'only while');
    const jobs = JSON.parse(ok(s.home, 'catalog', 'jobs', '--json').stdout) as Array<{ id: number; target: string; status: string; mode: string }>;
    // The backup across cartridges and the chunked backup over two streams, newest first.
    expect(jobs).toEqual([expect.objectContaining({ target: 'demo-mirror', status: 'done', mode: 'chunked' }), expect.objectContaining({ target: 'demo-mirror', status: 'done', mode: 'single' })]);
    const again = path.join(s.dir, 'again.img');
    ok(s.home, 'restore', String(jobs[1]!.id), '--to', again);
    expect(sha256(fs.readFileSync(again))).toBe(sha256(fs.readFileSync(path.join(s.home, 'demo-restored.img'))));
    const shown = JSON.parse(ok(s.home, 'catalog', 'show', String(jobs[1]!.id), '--json').stdout) as { segments: Array<{ barcode: string }> };
    expect(new Set(shown.segments.map((x) => x.barcode)).size).toBeGreaterThan(1);
  });

  it('runs twice in the same home, replacing the earlier demo, and leaves the rest of the home alone', async () => {
    ok(s.home, 'volume', 'create', 'mine', '--size', '64K');
    ok(s.home, 'volume', 'write', 'mine', '--random', '64K', '--seed', '11');
    const sum = checksum(s.home, 'mine');
    const first = await plexusAsync(s.home, 'demo', '--size', '4M');
    expect(first.code, first.stderr).toBe(0);
    const firstSum = checksum(s.home, 'demo-db');
    const second = await plexusAsync(s.home, 'demo', '--size', '4M');
    expect(second.code, second.stderr).toBe(0);
    expect(listNames(s.home)).toEqual(['demo-db', 'demo-mirror', 'mine']);
    // Deterministic (seeded data, fixed writes), and the earlier demo's backup is gone with its library.
    expect(checksum(s.home, 'demo-db')).toBe(firstSum);
    expect(checksum(s.home, 'mine')).toBe(sum);
    const jobs = JSON.parse(ok(s.home, 'catalog', 'jobs', '--json').stdout) as Array<{ target: string }>;
    expect(jobs).toHaveLength(2);
    // The demo's fault on the copy device does not outlive it.
    expect(ok(s.home, 'fault', 'list').stdout).toBe('no faults\n');
    expect(JSON.parse(ok(s.home, 'library', 'list', '--json').stdout)).toHaveLength(1);
  });

  it('refuses a malformed --size with E_INVALID', () => {
    expectFailure(plexus(s.home, 'demo', '--size', 'lots'), 'E_INVALID', "'lots'");
    expect(listNames(s.home)).toEqual([]);
  });

  it('refuses a size too small for its writes up front, leaving nothing behind', () => {
    expectFailure(plexus(s.home, 'demo', '--size', '64K'), 'E_INVALID', 'at least');
    expect(listNames(s.home)).toEqual([]);
    expect(fs.readdirSync(path.join(s.home, 'volumes'))).toEqual([]);
  });
});
