/** `plexus bench scale` with small sizes: every part runs, figures are shaped as documented, the result is stored (not a timed test). */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ok, useScratch } from '../cli/cli-helpers.js';

const s = useScratch();

describe('plexus bench scale', () => {
  it('measures checkpoint costs per size, durable marks and the catalog, and stores the result', () => {
    const results = path.join(s.dir, 'results');
    const args = ['bench', 'scale', '--sizes', '64M,1G', '--data', '4M', '--mark-rounds', '1', '--jobs', '200', '--segments', '2000', '--cartridges', '20', '--results', results];
    const r = JSON.parse(ok(s.home, ...args, '--json').stdout) as {
      benchmark: string;
      costs: { checkpoints: Array<{ sizeBytes: number; dataBytes: number; sidecarSyncs: number }>; marks: { one: { writers: number }; eight: { writers: number } } };
      catalog: { operations: Array<{ name: string; medianMs: number }> };
      targets: Record<string, { measured: number }>;
      resultFile: string;
    };
    expect(r.benchmark).toBe('scale');
    expect(r.costs.checkpoints.map((c) => [c.sizeBytes, c.dataBytes])).toEqual([
      [64 << 20, 4 << 20],
      [1 << 30, 4 << 20],
    ]);
    for (const c of r.costs.checkpoints) expect(c.sidecarSyncs).toBeGreaterThan(0);
    expect([r.costs.marks.one.writers, r.costs.marks.eight.writers]).toEqual([1, 8]);
    expect(r.catalog.operations.length).toBeGreaterThan(3);
    expect(Object.keys(r.targets).some((k) => k.startsWith('catalog: '))).toBe(true);
    expect(fs.existsSync(r.resultFile)).toBe(true);
  });
});
