/**
 * The `<primary>.open` marker is durable: written to a temporary file that is fsynced,
 * renamed into place, then the directory fsynced; and its removal fsynced. Observed with strace on a real CLI write.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Home, Mirrors, VolumeStore } from '../../src/index.js';
import { CLI, scratchDir } from '../helpers/home.js';

// `strace -V` succeeds even where ptrace is forbidden (a container without
// CAP_SYS_PTRACE); tracing a real process is the probe that tells.
const strace = spawnSync('strace', ['-f', '-e', 'trace=none', 'true']).status === 0;
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
    // One file per thread (-ff): the marker's syscalls are on the main thread, and no
    // other thread's calls can split them into `<unfinished ...>` / `resumed` lines.
    const prefix = path.join(scratch.dir, 'strace');
    const r = spawnSync(
      'strace',
      [
        '-ff',
        '-qq',
        '-e',
        'trace=openat,fsync,close,unlink,rename,renameat,renameat2',
        '-o',
        prefix,
        process.execPath,
        CLI,
        '--home',
        scratch.dir,
        'volume',
        'write',
        'p',
        '--pattern',
        '1',
        '--length',
        '4K',
      ],
      {
        encoding: 'utf8',
        env: { ...process.env, PLEXUS_HOME: '' },
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const traces = fs.readdirSync(scratch.dir).filter((f) => f.startsWith('strace.'));
    const withMarker = traces.map((f) => fs.readFileSync(path.join(scratch.dir, f), 'utf8')).filter((t) => t.includes('/pairs/p.open"'));
    expect(withMarker).toHaveLength(1);
    const calls = withMarker[0]!.split('\n');
    const result = (i: number): string => {
      const m = /= (-?\d+)(?: [A-Z]+ .*)?$/.exec(calls[i]!);
      expect(m, calls[i]).not.toBeNull();
      return m![1]!;
    };
    const synced = (line: string, fd: string): boolean => new RegExp(`^fsync\\(${fd}\\)\\s*= 0$`).test(line);
    // After `from`: the pairs directory opened and fsynced before it is closed.
    const dirSyncedAfter = (from: number): boolean => {
      const d = calls.findIndex((l, i) => i > from && /^openat\(.*\/pairs", O_RDONLY/.test(l));
      if (d < 0) return false;
      const dfd = result(d);
      const closed = calls.findIndex((l, i) => i > d && l.startsWith(`close(${dfd})`));
      return calls.slice(d, closed < 0 ? undefined : closed).some((l) => synced(l, dfd));
    };
    // The marker is made by a temporary file beside it: written, fsynced, closed, renamed
    // into place, then the directory fsynced.
    const renamed = calls.findIndex((l) => /^rename(at2?)?\(.*"[^"]*\/pairs\/\.p\.open\.[^"]*\.tmp".*"[^"]*\/pairs\/p\.open".*\) = 0/.test(l));
    expect(renamed, calls.filter((l) => l.includes('p.open')).join('\n')).toBeGreaterThanOrEqual(0);
    const tmp = /"([^"]*\/pairs\/\.p\.open\.[^"]*\.tmp)"/.exec(calls[renamed]!)![1]!;
    const open = calls.findIndex((l) => l.startsWith('openat(') && l.includes(`"${tmp}"`) && l.includes('O_CREAT'));
    expect(open).toBeGreaterThanOrEqual(0);
    expect(open).toBeLessThan(renamed);
    const fd = result(open);
    const closed = calls.findIndex((l, i) => i > open && l.startsWith(`close(${fd})`));
    expect(closed).toBeGreaterThan(open);
    expect(closed).toBeLessThan(renamed);
    expect(calls.slice(open, closed).some((l) => synced(l, fd))).toBe(true);
    expect(dirSyncedAfter(renamed)).toBe(true);
    const unlinked = calls.findIndex((l) => /^unlink\(.*\/pairs\/p\.open"\) = 0/.test(l));
    expect(unlinked).toBeGreaterThan(renamed);
    expect(dirSyncedAfter(unlinked)).toBe(true);
  });
});
