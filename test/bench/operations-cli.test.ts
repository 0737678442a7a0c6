/** `plexus bench restore` and `plexus bench split` on small sizes: every contender runs, results are shaped and stored (not timed tests). */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ok, useScratch } from '../cli/cli-helpers.js';

const s = useScratch();

describe('plexus bench restore / split', () => {
  it('restores one job to a file, into a volume and into a mirrored primary', () => {
    const results = path.join(s.dir, 'results');
    const r = JSON.parse(ok(s.home, 'bench', 'restore', '--size', '16M', '--rounds', '1', '--cache', 'none', '--json', '--results', results).stdout) as {
      benchmark: string;
      seconds: { toFile: number[]; toVolume: number[]; toMirroredPrimary: number[] };
      targets: Record<string, { measured: number }>;
      resultFile: string;
    };
    expect(r.benchmark).toBe('restore-volume');
    for (const xs of Object.values(r.seconds)) expect(xs).toHaveLength(1);
    expect(r.targets['restore into a volume / restore to a file (speed)']!.measured).toBeGreaterThan(0);
    expect(fs.existsSync(r.resultFile)).toBe(true);
  });

  it('reports the frozen time of split backups per primary size', () => {
    const results = path.join(s.dir, 'results');
    const r = JSON.parse(ok(s.home, 'bench', 'split', '--sizes', '64M,1G', '--rounds', '1', '--json', '--results', results).stdout) as {
      cases: Array<{ sizeBytes: number; frozenMs: number[]; hookMs: number[] }>;
      targets: Record<string, { measured: number }>;
    };
    expect(r.cases.map((c) => c.sizeBytes)).toEqual([64 << 20, 1 << 30]);
    // The frozen window holds both hooks, so it is at least as long as they ran.
    for (const c of r.cases) expect(c.frozenMs[0]!).toBeGreaterThanOrEqual(c.hookMs[0]!);
    expect(Object.keys(r.targets)).toHaveLength(2);
  });
});
