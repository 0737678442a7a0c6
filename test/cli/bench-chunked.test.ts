/** A functional test of `plexus bench chunked`: it runs, verifies and reports; speed is never asserted. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { plexusAsync } from '../helpers/home.js';
import { MiB, useScratch } from './cli-helpers.js';

const s = useScratch();

describe('plexus bench chunked', () => {
  it('runs with --json, stores its result and leaves nothing in the home or in memory', async () => {
    const res = path.join(s.dir, 'res');
    const shmBefore = fs.existsSync('/dev/shm') ? fs.readdirSync('/dev/shm').filter((f) => f.startsWith('plexus-bench-')).length : 0;
    const r = await plexusAsync(s.home, 'bench', 'chunked', '--size', '32M', '--chunk', '2M', '--rounds', '1', '--json', '--results', res);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      benchmark: string;
      sizeBytes: number;
      chunkBytes: number;
      timings: Array<{ name: string; bestSeconds: number; seconds: number[] }>;
      targets: Record<string, { target: string; measured: number; met: boolean }>;
      chunkingOverhead: number;
      failoverRatio: number;
      parallelSameDiskRatio: number;
      resultFile: string;
    };
    expect(out).toMatchObject({ benchmark: 'chunked', sizeBytes: 32 * MiB, chunkBytes: 2 * MiB });
    expect(out.timings.slice(0, 4).map((t) => t.name)).toEqual(['single stream (tape issue)', 'chunked, 2 MiB commands', 'chunked, device 0 fails half-way', 'parallel, 2 streams, same disk']);
    for (const t of out.timings) expect(t.bestSeconds).toBeGreaterThan(0);
    // Each ratio is the median of the per-round ratios (one round here: that round's ratio).
    const ratio = (a: number, b: number): number => out.timings[a]!.seconds[0]! / out.timings[b]!.seconds[0]!;
    expect(out.timings.every((t) => t.seconds.length === 1 && t.seconds[0] === t.bestSeconds)).toBe(true);
    expect(out.chunkingOverhead).toBeCloseTo(ratio(1, 0), 9);
    expect(out.failoverRatio).toBeCloseTo(ratio(2, 1), 9);
    expect(out.parallelSameDiskRatio).toBeCloseTo(ratio(3, 0), 9);
    expect(Object.keys(out.targets)).toEqual(expect.arrayContaining(['chunking overhead (chunked / single)', 'switch-over (device 0 failing half-way / fault-free)']));
    expect(JSON.parse(fs.readFileSync(out.resultFile, 'utf8'))).toMatchObject({ benchmark: 'chunked' });
    expect(fs.readdirSync(path.join(s.home)).filter((f) => f.startsWith('bench-'))).toEqual([]);
    if (fs.existsSync('/dev/shm')) expect(fs.readdirSync('/dev/shm').filter((f) => f.startsWith('plexus-bench-'))).toHaveLength(shmBefore);
  });
});
