/** A functional test of `plexus bench backup`: it runs, verifies and reports; speed is never asserted. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { plexusAsync } from '../helpers/home.js';
import { MiB, useScratch } from './cli-helpers.js';

const s = useScratch();

describe('plexus bench backup', () => {
  it('runs with --json, stores its result, writes a plot and leaves nothing in the home', async () => {
    // Two rounds, so the ratios are medians of two per-round ratios; fadvise drops only the benchmark's own files from the cache.
    const res = path.join(s.dir, 'res');
    const svg = path.join(s.dir, 'b.svg');
    const r = await plexusAsync(s.home, 'bench', 'backup', '--size', '16M', '--rounds', '2', '--cartridges', '4', '--cache', 'fadvise', '--json', '--results', res, '--plot', svg);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      benchmark: string;
      sizeBytes: number;
      spanCartridges: number;
      rounds: number;
      cache: string;
      loadAverage: { start: number; end: number };
      timings: Array<{ name: string; bestSeconds: number; rate: number; seconds: number[] }>;
      roundRatios: { backupVsDd: number[]; restoreVsDd: number[]; spanningOverhead: number[] };
      targets: Record<string, { target: string; measured: number; met: boolean }>;
      backupVsDd: number;
      restoreVsDd: number;
      spanningOverhead: number;
      resultFile: string;
    };
    expect(out).toMatchObject({ benchmark: 'backup', sizeBytes: 16 * MiB, spanCartridges: 4, rounds: 2, cache: 'fadvise' });
    expect(out.loadAverage.start).toBeGreaterThanOrEqual(0);
    expect(out.loadAverage.end).toBeGreaterThanOrEqual(0);
    expect(out.timings.map((t) => t.name)).toEqual([
      'plexus backup, 1 cartridge',
      'plexus backup, 4 cartridges',
      'plexus restore, 4 cartridges',
      'dd bs=4M conv=fsync (write)',
      'dd bs=4M conv=fsync (read back)',
      'tar -cf + sync',
    ]);
    for (const t of out.timings) {
      expect(t.seconds).toHaveLength(2);
      expect(t.bestSeconds).toBe(Math.min(...t.seconds));
    }
    // Each ratio is the median of the per-round ratios of the contenders' own times, not a ratio of bests.
    const sec = (n: number): number[] => out.timings[n]!.seconds;
    const perRound = (a: number[], b: number[]): number[] => a.map((x, i) => x / b[i]!);
    const median2 = (r: number[]): number => (r[0]! + r[1]!) / 2;
    const expected = { backupVsDd: perRound(sec(3), sec(0)), restoreVsDd: perRound(sec(4), sec(2)), spanningOverhead: perRound(sec(1), sec(0)) };
    for (const [k, r] of Object.entries(expected)) {
      const got = out.roundRatios[k as keyof typeof expected];
      expect(got).toHaveLength(2);
      for (const [i, x] of got.entries()) expect(x).toBeCloseTo(r[i]!, 9);
      expect(out[k as keyof typeof expected]).toBeCloseTo(median2(r), 9);
    }
    expect(out.targets['spanning overhead (4 cartridges / 1)']!.measured).toBe(out.spanningOverhead);
    expect(Object.keys(out.targets)).toHaveLength(3);
    expect(JSON.parse(fs.readFileSync(out.resultFile, 'utf8'))).toMatchObject({ benchmark: 'backup', sizeBytes: 16 * MiB });
    expect(fs.readFileSync(svg, 'utf8')).toMatch(/^<svg/);
    // The benchmark works in a scratch home of its own and removes it.
    expect(fs.readdirSync(s.home).filter((f) => f.startsWith('bench-backup-'))).toEqual([]);
  });

  it('prints the per-round ratios, the cache handling and the load average; refuses an unknown --cache', async () => {
    const res = path.join(s.dir, 'res2');
    const r = await plexusAsync(s.home, 'bench', 'backup', '--size', '8M', '--rounds', '1', '--cartridges', '2', '--cache', 'none', '--results', res);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/spanning overhead +\d+\.\d{3}\n/);
    expect(r.stdout).toContain('every contender started from: sync, then the source volume read into the page cache (nothing dropped)');
    expect(r.stdout).toMatch(/load average \(1 min\) at start \/ end: \d+\.\d\d \/ \d+\.\d\d/);
    const bad = await plexusAsync(s.home, 'bench', 'backup', '--cache', 'sometimes');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("--cache 'sometimes' must be auto, drop, fadvise or none");
  });
});
