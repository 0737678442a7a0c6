/** A functional test of `plexus bench resync`: it runs, verifies and reports; speed is never asserted. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, plexus, plexusAsync } from '../helpers/home.js';
import { expectFailure, KiB, listNames, MiB, useScratch } from './cli-helpers.js';

const s = useScratch();

interface Case {
  granularity: number;
  fraction: number;
  regions: number;
  bytesCopied: number;
  bestSeconds: number;
  medianSeconds: number;
  engineSeconds: number;
  rate: number;
}

interface Result {
  benchmark: string;
  sizeBytes: number;
  rounds: number;
  granularities: number[];
  fractions: number[];
  cases: Case[];
  fullResync: Array<{ granularity: number; bytesCopied: number; bestSeconds: number }>;
  plainCopy: { bestSeconds: number; rate: number };
  rsync: Array<{ granularity: number; fraction: number; regions: number; bestSeconds: number }> | null;
  wholeProcess: { granularity: number; fraction: number; bestSeconds: number } | null;
  writePath: Record<string, { meanNs: number; medianNs: number }> | null;
  targets: Record<string, { target: string; measured: number; met: boolean }>;
  resultFile: string;
}

describe('plexus bench resync', () => {
  it('runs with --json, copies exactly the dirtied regions, stores its result, plots and cleans up', async () => {
    const res = path.join(s.dir, 'res');
    const svg = path.join(s.dir, 'r.svg');
    const r = await plexusAsync(
      s.home,
      'bench',
      'resync',
      '--size',
      '16M',
      '--rounds',
      '1',
      '--granularities',
      '4K,64K',
      '--fractions',
      '1%,0.1',
      '--writes',
      '500',
      '--json',
      '--results',
      res,
      '--plot',
      svg,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as Result;
    expect(out.benchmark).toBe('resync');
    expect(out.sizeBytes).toBe(16 * MiB);
    expect(out.rounds).toBe(1);
    expect(out.granularities).toEqual([4 * KiB, 64 * KiB]);
    expect(out.fractions).toEqual([0.01, 0.1]);

    // One case per granularity and fraction; each copied exactly its dirtied regions.
    expect(out.cases).toHaveLength(4);
    for (const c of out.cases) {
      const regions = (16 * MiB) / c.granularity;
      expect(c.regions).toBe(Math.max(1, Math.round(c.fraction * regions)));
      expect(c.bytesCopied).toBe(c.regions * c.granularity);
      expect(c.bestSeconds).toBeGreaterThan(0);
      expect(c.medianSeconds).toBeGreaterThanOrEqual(c.bestSeconds);
      expect(c.engineSeconds).toBeGreaterThan(0);
      expect(c.rate).toBeGreaterThan(0);
    }
    expect(out.fullResync.map((f) => [f.granularity, f.bytesCopied])).toEqual([
      [4 * KiB, 16 * MiB],
      [64 * KiB, 16 * MiB],
    ]);
    expect(out.plainCopy.bestSeconds).toBeGreaterThan(0);
    // rsync ran at 64 KiB for each fraction; the target case also ran as a whole process.
    expect(out.rsync!.map((x) => [x.granularity, x.fraction])).toEqual([
      [64 * KiB, 0.01],
      [64 * KiB, 0.1],
    ]);
    expect(out.wholeProcess).toMatchObject({ granularity: 64 * KiB, fraction: 0.01 });
    for (const k of ['plain', 'split', 'splitIntent', 'splitIntentNew', 'pair', 'pairNew']) {
      expect(out.writePath![k]!.meanNs).toBeGreaterThan(0);
      expect(out.writePath![k]!.medianNs).toBeGreaterThan(0);
    }
    expect(Object.keys(out.targets).sort()).toEqual([
      '4K write, PAIR (two copies) / plain',
      '4K write, split primary / plain',
      'resync 1% @64K vs full resync (x faster)',
      'resync 1% @64K vs rsync (x faster)',
    ]);

    // The result file holds the same figures; the plot is an SVG.
    expect(path.dirname(out.resultFile)).toBe(res);
    const saved = JSON.parse(fs.readFileSync(out.resultFile, 'utf8')) as Result;
    expect(saved.cases).toEqual(out.cases);
    const text = fs.readFileSync(svg, 'utf8');
    expect(text.startsWith('<svg')).toBe(true);
    expect(text.trimEnd().endsWith('</svg>')).toBe(true);
    expect(text).toContain('rsync');

    // No scratch volume, pair or write-path directory is left.
    expect(listNames(s.home)).toEqual([]);
    expect(fs.existsSync(path.join(s.home, 'pairs'))).toBe(false);
    expect(fs.readdirSync(s.home).sort()).toEqual(['plexus.json', 'volumes']);
  });

  it('prints tables without --json, and --no-rsync leaves rsync out', () => {
    const r = plexus(s.home, 'bench', 'resync', '--size', '4M', '--rounds', '2', '--granularities', '64K', '--fractions', '0.01', '--writes', '0', '--no-rsync', '--results', path.join(s.dir, 'res'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^GRANULARITY\s+DIRTY\s+REGIONS\s+COPIED/m);
    expect(r.stdout).toContain('full resync (pair resync --full)');
    expect(r.stdout).toContain('resync 1% @64K vs full resync');
    expect(r.stdout).not.toContain('rsync --inplace');
    expect(r.stdout).not.toContain('vs rsync');
    expect(listNames(s.home)).toEqual([]);
  });

  it('fails with E_NOTOOL when rsync is not on the PATH, before creating anything', () => {
    const empty = path.join(s.dir, 'empty-bin');
    fs.mkdirSync(empty);
    const run = spawnSync(process.execPath, [CLI, '--home', s.home, 'bench', 'resync', '--size', '4M', '--results', path.join(s.dir, 'res')], {
      encoding: 'utf8',
      env: { ...process.env, PLEXUS_HOME: '', PATH: empty },
    });
    expectFailure({ code: run.status ?? -1, stdout: run.stdout, stderr: run.stderr }, 'E_NOTOOL', 'rsync', '--no-rsync');
    expect(fs.existsSync(path.join(s.dir, 'res'))).toBe(false);
    expect(listNames(s.home)).toEqual([]);
  });

  it.each([
    [['--fractions', '0'], 'fraction'],
    [['--fractions', '150%'], 'fraction'],
    [['--granularities', '3K'], 'granularity'],
    [['--rounds', '0'], 'rounds'],
  ])('refuses %j with E_INVALID', (args, mention) => {
    expectFailure(plexus(s.home, 'bench', 'resync', '--size', '4M', ...args, '--results', path.join(s.dir, 'res')), 'E_INVALID', mention);
    expect(fs.existsSync(path.join(s.dir, 'res'))).toBe(false);
    expect(listNames(s.home)).toEqual([]);
  });
});
