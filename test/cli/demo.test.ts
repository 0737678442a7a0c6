import path from 'node:path';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { plexus, plexusAsync } from '../helpers/home.js';
import { checksum, expectFailure, listNames, MiB, ok, useScratch } from './cli-helpers.js';

const s = useScratch();

interface Info {
  id: string;
  size: number;
  blockSize: number;
}

describe('plexus demo', () => {
  it('runs end to end on a fresh home and leaves two identical volumes', async () => {
    const r = await plexusAsync(s.home, 'demo', '--size', '8M');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('demo complete');
    expect(r.stdout).toMatch(/demo complete: \d+ checks verified in /);
    expect(r.stdout).toContain(s.home);
    expect(r.stdout).not.toMatch(/fail/i);

    expect(listNames(s.home)).toEqual(['demo-dst', 'demo-src']);
    const src = JSON.parse(ok(s.home, 'volume', 'show', 'demo-src', '--json').stdout) as Info;
    const dst = JSON.parse(ok(s.home, 'volume', 'show', 'demo-dst', '--json').stdout) as Info;
    expect(src.size).toBe(8 * MiB);
    expect(dst.size).toBe(8 * MiB);
    expect(src.id).not.toBe(dst.id);
    expect(checksum(s.home, 'demo-src')).toBe(checksum(s.home, 'demo-dst'));
  });

  it('runs twice in the same home, replacing the earlier demo volumes', async () => {
    const first = await plexusAsync(s.home, 'demo', '--size', '8M');
    expect(first.code, first.stderr).toBe(0);
    const firstId = (JSON.parse(ok(s.home, 'volume', 'show', 'demo-src', '--json').stdout) as Info).id;
    const firstSum = checksum(s.home, 'demo-src');

    const second = await plexusAsync(s.home, 'demo', '--size', '8M');
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('demo complete');
    expect(listNames(s.home)).toEqual(['demo-dst', 'demo-src']);
    const secondId = (JSON.parse(ok(s.home, 'volume', 'show', 'demo-src', '--json').stdout) as Info).id;
    expect(secondId).not.toBe(firstId);
    // The demo is deterministic (seeded data, fixed writes).
    expect(checksum(s.home, 'demo-src')).toBe(firstSum);
    expect(checksum(s.home, 'demo-dst')).toBe(firstSum);
  });

  it('leaves other volumes in the home alone', async () => {
    ok(s.home, 'volume', 'create', 'mine', '--size', '64K');
    ok(s.home, 'volume', 'write', 'mine', '--random', '64K', '--seed', '11');
    const sum = checksum(s.home, 'mine');
    const r = await plexusAsync(s.home, 'demo', '--size', '4M');
    expect(r.code, r.stderr).toBe(0);
    expect(listNames(s.home)).toEqual(['demo-dst', 'demo-src', 'mine']);
    expect(checksum(s.home, 'mine')).toBe(sum);
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
