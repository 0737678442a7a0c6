/** A functional test of `plexus bench copy`: it runs and reports; speed is never asserted. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { plexus, plexusAsync } from '../helpers/home.js';
import { expectFailure, listNames, MiB, useScratch } from './cli-helpers.js';

const s = useScratch();

interface Timing {
  name: string;
  bestSeconds: number;
  medianSeconds: number;
  rate: number;
}

describe('plexus bench copy', () => {
  it('runs with --json, stores its result, writes a plot and cleans up its volumes', async () => {
    const res = path.join(s.dir, 'res');
    const svg = path.join(s.dir, 'p.svg');
    const r = await plexusAsync(s.home, 'bench', 'copy', '--size', '8M', '--rounds', '1', '--json', '--results', res, '--plot', svg);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');

    const out = JSON.parse(r.stdout) as {
      benchmark: string;
      sizeBytes: number;
      rounds: number;
      timings: Timing[];
      memcpyRate: number;
      ratioVsDd: number;
      ratioVsDdWholeProcess: number;
      bitmapSetNs: number;
      targets: Record<string, { target: string; measured: number; met: boolean }>;
      resultFile: string;
    };
    expect(out.benchmark).toBe('copy');
    expect(out.sizeBytes).toBe(8 * MiB);
    expect(out.rounds).toBe(1);
    expect(out.timings).toHaveLength(3);
    for (const t of out.timings) {
      expect(typeof t.name).toBe('string');
      expect(t.bestSeconds).toBeGreaterThan(0);
      expect(t.medianSeconds).toBeGreaterThanOrEqual(t.bestSeconds);
      expect(t.rate).toBeGreaterThan(0);
    }
    expect(new Set(out.timings.map((t) => t.name)).size).toBe(3);
    expect(out.ratioVsDd).toBeGreaterThan(0);
    expect(out.ratioVsDdWholeProcess).toBeGreaterThan(0);
    expect(out.memcpyRate).toBeGreaterThan(0);
    expect(out.bitmapSetNs).toBeGreaterThan(0);
    expect(Object.keys(out.targets).length).toBeGreaterThan(0);

    // The result file is in res/ and holds the same figures.
    expect(path.dirname(out.resultFile)).toBe(res);
    expect(fs.existsSync(out.resultFile)).toBe(true);
    expect(fs.readdirSync(res)).toContain(path.basename(out.resultFile));
    const saved = JSON.parse(fs.readFileSync(out.resultFile, 'utf8')) as { timings: Timing[]; sizeBytes: number };
    expect(saved.sizeBytes).toBe(8 * MiB);
    expect(saved.timings).toEqual(out.timings);

    // The plot is an SVG.
    const text = fs.readFileSync(svg, 'utf8');
    expect(text.startsWith('<svg')).toBe(true);
    expect(text.trimEnd().endsWith('</svg>')).toBe(true);

    // The benchmark's scratch volumes are gone.
    expect(listNames(s.home)).toEqual([]);
  });

  it('refuses a bad --rounds with E_INVALID', () => {
    expectFailure(plexus(s.home, 'bench', 'copy', '--size', '1M', '--rounds', '0', '--results', path.join(s.dir, 'res')), 'E_INVALID', 'rounds');
    expect(fs.existsSync(path.join(s.dir, 'res'))).toBe(false);
  });
});
