/**
 * Numbers from JavaScript never abort Node: every native entry point that takes a
 * number is called with NaN, ±Infinity, -1, -0, fractions, 2^31..2^64, 1e300, in a
 * child process (an abort there cannot take the test runner down), which must exit
 * normally; every failure must be a coded error, and none a caught panic (E_INTERNAL:
 * bad input is refused before anything is converted or allocated).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { awaitNative, callNative, PlexusError } from '../../src/errors.js';
import { native } from '../../src/native/binding.js';

const SCRIPT = path.join(__dirname, '..', 'fixtures', 'native-fuzz.cjs');

interface Outcome {
  name: string;
  value: string;
  ok?: boolean;
  code?: string;
  message?: string;
}

function runChild(mode?: string, extra: string[] = [], prefix: string[] = []): { status: number | null; signal: NodeJS.Signals | null; outcomes: Outcome[]; stderr: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plexus-fuzz-'));
  try {
    const argv = [process.execPath, SCRIPT, dir, ...(mode ? [mode] : []), ...extra];
    const r = spawnSync(prefix[0] ?? argv[0]!, [...prefix.slice(1), ...(prefix.length > 0 ? argv : argv.slice(1))], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 240_000 });
    const outcomes = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Outcome);
    return { status: r.status, signal: r.signal, outcomes, stderr: r.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('numeric inputs of the native binding', () => {
  it('extreme numbers at every entry point: the process survives, every failure is coded, none is a panic', () => {
    const r = runChild();
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    // 69 entry points x 15 values, each reported.
    expect(r.outcomes.length).toBeGreaterThan(900);
    const bad = r.outcomes.filter((o) => !o.ok && !/^E_[A-Z0-9_]+$/.test(o.code ?? ''));
    expect(bad).toEqual([]);
    expect(r.outcomes.filter((o) => o.code === 'E_INTERNAL')).toEqual([]);
    // The values the issue names are refused with the argument's name.
    const of = (name: string, value: string): Outcome | undefined => r.outcomes.find((o) => o.name === name && o.value === value);
    expect(of('XcopyJob timeoutMs', '1e+300')).toMatchObject({ code: 'E_RANGE', message: expect.stringContaining('timeout') });
    expect(of('XcopyJob timeoutMs', 'NaN')).toMatchObject({ code: 'E_INVALID' });
    expect(of('volume.read length', String(2 ** 53))).toMatchObject({ code: 'E_INVALID', message: expect.stringContaining('length') });
    expect(of('volume.read length', String(2 ** 40))).toMatchObject({ code: 'E_RANGE' });
    expect(of('randomBytes length', String(2 ** 40))).toMatchObject({ code: 'E_RANGE' });
    expect(of('NativeBitmap.create size', String(2 ** 53 - 1))).toMatchObject({ code: 'E_RANGE' });
    expect(of('planSegmentCommands chunk', '0.5')).toMatchObject({ code: 'E_INVALID' });
    // Whole numbers napi-rs would have wrapped silently (NaN to 0, -1 to 2^32 - 1).
    expect(of('drive.locate file', 'NaN')).toMatchObject({ code: 'E_INVALID', message: expect.stringContaining('file') });
    expect(of('XcopyJob id', '-1')).toMatchObject({ code: 'E_INVALID' });
    expect(of('CopyJob threads', String(2 ** 31))).toMatchObject({ code: 'E_RANGE' });
    expect(of('volume.fill pattern', '0.5')).toMatchObject({ code: 'E_INVALID' });
  }, 300_000);

  it('random numbers at every entry point (seeded, the seed in every failure): the process survives, every failure is coded, none is a panic', () => {
    const seed = String(Math.floor(Math.random() * 2 ** 32));
    const r = runChild('random', [seed, '12']);
    expect(r.signal, `seed ${seed}: ${r.stderr}`).toBeNull();
    expect(r.status, `seed ${seed}: ${r.stderr}`).toBe(0);
    expect(r.outcomes.length, `seed ${seed}`).toBeGreaterThan(800);
    const bad = r.outcomes.filter((o) => !o.ok && !/^E_[A-Z0-9_]+$/.test(o.code ?? ''));
    expect(bad, `seed ${seed}`).toEqual([]);
    expect(
      r.outcomes.filter((o) => o.code === 'E_INTERNAL'),
      `seed ${seed}`,
    ).toEqual([]);
  }, 300_000);

  it.skipIf(spawnSync('prlimit', ['--version']).status !== 0)('a read length past the end is refused before its buffer is allocated (under a 512 MiB data limit: no abort)', () => {
    const r = runChild('alloc', [], ['prlimit', `--data=${512 << 20}`]);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(r.outcomes.map((o) => [o.name, o.code])).toEqual([
      ['mirror.readPrimary length', 'E_RANGE'],
      ['mirror.readSecondary length', 'E_RANGE'],
      ['volume.read length', 'E_RANGE'],
    ]);
  });

  it('a panic at the boundary is E_INTERNAL, on the calling thread and in a task, and the process lives on', async () => {
    const r = runChild('panic');
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(r.outcomes.map((o) => [o.name, o.code])).toEqual([
      ['panicProbe sync', 'E_INTERNAL'],
      ['panicProbe task', 'E_INTERNAL'],
    ]);
    // Through the library's wrappers both are PlexusErrors with that code.
    let sync: unknown;
    try {
      callNative(() => native.panicProbe(false));
    } catch (e) {
      sync = e;
    }
    expect(sync).toBeInstanceOf(PlexusError);
    expect((sync as PlexusError).code).toBe('E_INTERNAL');
    await expect(awaitNative(native.panicProbe(true) as Promise<void>)).rejects.toMatchObject({ code: 'E_INTERNAL' });
  });
});
