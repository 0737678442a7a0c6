/**
 * The `<primary>.open` marker is durable: fsynced (file, then directory) when an owner
 * writes it, and its removal fsynced. Observed with strace on a real CLI write.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Home, Mirrors, VolumeStore } from '../../src/index.js';
import { CLI, scratchDir } from '../helpers/home.js';

const strace = spawnSync('strace', ['-V']).status === 0;
let scratch: ReturnType<typeof scratchDir>;

beforeEach(() => {
  scratch = scratchDir();
});
afterEach(() => scratch.cleanup());

describe.skipIf(!strace)('the owner marker', () => {
  it('is fsynced with its directory when written, and its removal is fsynced', async () => {
    const home = Home.open(scratch.dir);
    const store = new VolumeStore(home);
    store.create('p', { size: 1 << 20 });
    store.create('s', { size: 1 << 20 });
    await new Mirrors(home).create('p', 's');
    const trace = path.join(scratch.dir, 'strace.txt');
    const r = spawnSync(
      'strace',
      ['-f', '-e', 'trace=openat,fsync,close,unlink', '-o', trace, process.execPath, CLI, '--home', scratch.dir, 'volume', 'write', 'p', '--pattern', '1', '--length', '4K'],
      {
        encoding: 'utf8',
        env: { ...process.env, PLEXUS_HOME: '' },
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const calls = fs
      .readFileSync(trace, 'utf8')
      .split('\n')
      .map((l) => l.replace(/^\d+\s+/, ''));
    const open = calls.findIndex((l) => /^openat\(.*\/pairs\/p\.open", O_WRONLY\|O_CREAT/.test(l));
    expect(open).toBeGreaterThanOrEqual(0);
    const fd = /= (\d+)$/.exec(calls[open]!)![1];
    const closed = calls.findIndex((l, i) => i > open && l.startsWith(`close(${fd})`));
    expect(calls.slice(open, closed).some((l) => l.startsWith(`fsync(${fd})`))).toBe(true);
    const dirAfter = (from: number): boolean => {
      const d = calls.findIndex((l, i) => i > from && /^openat\(.*\/pairs", O_RDONLY/.test(l));
      if (d < 0) return false;
      const dfd = /= (\d+)$/.exec(calls[d]!)![1];
      return calls.slice(d, d + 3).some((l) => l.startsWith(`fsync(${dfd})`));
    };
    expect(dirAfter(closed)).toBe(true);
    const unlinked = calls.findIndex((l) => /^unlink\(.*\/pairs\/p\.open"\) = 0/.test(l));
    expect(unlinked).toBeGreaterThan(closed);
    expect(dirAfter(unlinked)).toBe(true);
  });
});
