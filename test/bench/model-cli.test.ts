/** `plexus bench model` as a process: the sweep with given costs (no I/O), its table, JSON, plot and result file; one run that measures the costs with a small sample. Speed is never asserted. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runModel } from '../../src/bench/model.js';
import { expectFailure, ok, useScratch } from '../cli/cli-helpers.js';
import { plexus, plexusAsync } from '../helpers/home.js';

const s = useScratch();
const GiB = 2 ** 30;

interface Cell {
  dirtyFraction: number;
  drives: number;
  jobs: number;
  bytes: number;
  makespanSeconds: number;
  utilisation: number;
  fits: boolean;
}
interface ModelJson {
  benchmark: string;
  costs: { source: string; file?: string; secondsPerGiB: number; jobOverheadSeconds: number; cartridgeChangeSeconds: number; measurement?: Record<string, unknown> };
  fleet: { volumes: number; allocatedBytes: number };
  fractions: number[];
  driveCounts: number[];
  windowSeconds: number;
  cartridgeBytes: number;
  loadAverage: { start: number; end: number };
  cells: Cell[];
  resultFile: string;
}

const costs = { secondsPerGiB: 3, jobOverheadSeconds: 20, cartridgeChangeSeconds: 60 };
const small = ['--volumes', '50', '--min-size', '10G', '--max-size', '500G', '--fractions', '5%,100%', '--drives', '2,10', '--cartridge', '1.5T', '--window', '1h30m'];

/** Every tag of an SVG document opened and closed in order, under one <svg> root. */
function expectWellFormedSvg(text: string): void {
  expect(text.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  expect(text.trimEnd().endsWith('</svg>')).toBe(true);
  const open: string[] = [];
  for (const m of text.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    if (m[1]) expect(open.pop()).toBe(m[2]);
    else if (!m[3]) open.push(m[2]!);
  }
  expect(open).toEqual([]);
}

describe('plexus bench model', () => {
  it('simulates the sweep with costs from a file: JSON cells as the model computes them, a plot, a stored result', () => {
    const file = path.join(s.dir, 'costs.json');
    fs.writeFileSync(file, JSON.stringify(costs));
    const res = path.join(s.dir, 'res');
    const svg = path.join(s.dir, 'model.svg');
    const r = JSON.parse(ok(s.home, 'bench', 'model', ...small, '--costs', file, '--json', '--results', res, '--plot', svg).stdout) as ModelJson;
    expect(r.benchmark).toBe('model');
    expect(r.costs).toEqual({ source: 'file', file, ...costs });
    expect(r).toMatchObject({ fractions: [0.05, 1], driveCounts: [2, 10], windowSeconds: 5400, cartridgeBytes: 1.5 * 2 ** 40 });
    expect(r.fleet.volumes).toBe(50);
    const expected = runModel({
      volumes: 50,
      minBytes: 10 * GiB,
      maxBytes: 500 * GiB,
      allocatedFraction: 0.6,
      seed: 7,
      fractions: [0.05, 1],
      driveCounts: [2, 10],
      cartridgeBytes: 1.5 * 2 ** 40,
      windowSeconds: 5400,
      costs,
    });
    expect(r.cells).toEqual(expected.cells);
    expect(r.cells.map((c) => [c.dirtyFraction, c.drives])).toEqual([
      [0.05, 2],
      [0.05, 10],
      [1, 2],
      [1, 10],
    ]);
    // A full night on two drives does not fit an hour and a half; 5% on ten does.
    expect(r.cells[2]!.fits).toBe(false);
    expect(r.cells[1]!.fits).toBe(true);
    // No home is made: nothing was measured.
    expect(fs.existsSync(s.home)).toBe(false);

    expect(path.dirname(r.resultFile)).toBe(res);
    const saved = JSON.parse(fs.readFileSync(r.resultFile, 'utf8')) as ModelJson;
    expect(saved.cells).toEqual(r.cells);

    const text = fs.readFileSync(svg, 'utf8');
    expectWellFormedSvg(text);
    // A line per drive count and the window's.
    expect(text.match(/<path /g)).toHaveLength(3);
    expect(text).toContain('2 drives');
    expect(text).toContain('10 drives');
    expect(text).toContain('window (1.5 h)');
  });

  it('prints a table of the window needed and utilisation per drive count, marking the nights that do not fit', () => {
    const svg = path.join(s.dir, 'alias.svg');
    const out = ok(s.home, 'bench', 'model', ...small, '--seconds-per-gib', '3', '--job-overhead', '20', '--cartridge-change', '60', '--results', path.join(s.dir, 'res'), '--svg', svg).stdout;
    const lines = out.split('\n');
    expect(lines.find((l) => l.startsWith('DIRTY'))).toMatch(/^DIRTY\s+BYTES\s+JOBS\s+2 DRIVES\s+10 DRIVES$/);
    expect(lines.find((l) => l.startsWith('5% '))).toMatch(/^5%\s+\S+ \S+\s+50\s+\d+:\d\d \d+%\s+\d+:\d\d \d+%$/);
    expect(lines.find((l) => l.startsWith('100% '))).toMatch(/\d+:\d\d \d+% \*/);
    expect(out).toContain('* does not fit the 1:30 window');
    expect(out).toContain('costs (given)');
    expect(fs.readFileSync(svg, 'utf8')).toContain('</svg>');
  });

  it('reuses the costs of an earlier result, a flag overriding one of them', () => {
    const res = path.join(s.dir, 'res');
    const first = JSON.parse(ok(s.home, 'bench', 'model', ...small, '--seconds-per-gib', '3', '--job-overhead', '20', '--cartridge-change', '60', '--json', '--results', res).stdout) as ModelJson;
    const again = JSON.parse(ok(s.home, 'bench', 'model', ...small, '--costs', first.resultFile, '--job-overhead', '5', '--json', '--results', res).stdout) as ModelJson;
    expect(again.costs).toMatchObject({ source: 'file', secondsPerGiB: 3, jobOverheadSeconds: 5, cartridgeChangeSeconds: 60 });
    expect(again.cells[0]!.makespanSeconds).toBeLessThan(first.cells[0]!.makespanSeconds);
  });

  it('refuses a malformed window, a missing or costless costs file and a too small sample before measuring', () => {
    const res = path.join(s.dir, 'res');
    expectFailure(plexus(s.home, 'bench', 'model', '--window', '8 hours', '--results', res), 'E_INVALID', 'window');
    expectFailure(plexus(s.home, 'bench', 'model', '--costs', path.join(s.dir, 'none.json'), '--results', res), 'E_NOENT', 'none.json');
    fs.writeFileSync(path.join(s.dir, 'bad.json'), '{"secondsPerGiB": 1}');
    expectFailure(plexus(s.home, 'bench', 'model', '--costs', path.join(s.dir, 'bad.json'), '--results', res), 'E_INVALID', 'jobOverheadSeconds');
    expectFailure(plexus(s.home, 'bench', 'model', '--fractions', '0%', '--results', res), 'E_INVALID', 'fraction');
    expectFailure(plexus(s.home, 'bench', 'model', '--sample-size', '32M', '--results', res), 'E_INVALID', 'sample size');
    expect(fs.existsSync(res)).toBe(false);
  });

  it('measures the costs with the engine on a small sample and leaves nothing in the home', async () => {
    const res = path.join(s.dir, 'res');
    const r = await plexusAsync(s.home, 'bench', 'model', ...small, '--sample-size', '64M', '--rounds', '1', '--cache', 'fadvise', '--json', '--results', res);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as ModelJson;
    expect(out.costs.source).toBe('measured');
    expect(out.costs.secondsPerGiB).toBeGreaterThan(0);
    expect(out.costs.jobOverheadSeconds).toBeGreaterThanOrEqual(0);
    expect(out.costs.cartridgeChangeSeconds).toBeGreaterThanOrEqual(0);
    expect(out.costs.measurement).toMatchObject({ sampleBytes: 64 << 20, tinyBytes: 1 << 20, rounds: 1, spanCartridges: 16, cache: 'fadvise' });
    const m = out.costs.measurement as { seconds: { tiny: number[]; sample: number[]; span: number[] } };
    for (const xs of [m.seconds.tiny, m.seconds.sample, m.seconds.span]) expect(xs).toHaveLength(1);
    expect(out.cells).toHaveLength(4);
    // The scratch home of the measurement is gone.
    expect(fs.readdirSync(s.home).filter((f) => f.startsWith('bench-'))).toEqual([]);
  });
});
