/**
 * PSUE keeps its record of what differs: a secondary that cannot be written suspends
 * the pair, the primary's writes are still recorded, and the resync afterwards copies
 * only those regions (a full copy only when the bitmaps were lost).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ResyncResult } from '../../../src/mirror/mirrors.js';
import { CLI, plexus } from '../../helpers/home.js';
import { expectFailure, ok, useScratch, volumeFiles } from '../cli-helpers.js';
import { display, G, json, put, sum, volumes } from './pair-helpers.js';

const s = useScratch();
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../dist/index.js');

/**
 * A secondary that refuses writes while it stays open: an LD_PRELOAD shim makes every
 * pwrite to the file named by PLEXUS_TEST_REFUSE_WRITES fail with EIO (as a failing disk
 * would), in the process it is loaded into. Compiled here with the system C compiler.
 */
const SHIM = `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
static int refused(int fd) {
  const char *want = getenv("PLEXUS_TEST_REFUSE_WRITES");
  char link[64], target[4096];
  if (!want || !*want) return 0;
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n < 0) return 0;
  target[n] = 0;
  return strcmp(target, want) == 0;
}
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
  static pwrite_fn real;
  if (!real) real = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite64");
  if (refused(fd)) { errno = EIO; return -1; }
  return real(fd, buf, count, offset);
}
ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
  static pwrite_fn real;
  if (!real) real = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite");
  if (refused(fd)) { errno = EIO; return -1; }
  return real(fd, buf, count, offset);
}
`;

/** Builds the shim into `dir`; returns the environment that makes `file` refuse writes. */
function refusingWrites(dir: string, file: string): NodeJS.ProcessEnv {
  const src = path.join(dir, 'refuse.c');
  const so = path.join(dir, 'refuse.so');
  fs.writeFileSync(src, SHIM);
  const cc = spawnSync('cc', ['-shared', '-fPIC', '-O2', '-o', so, src, '-ldl'], { encoding: 'utf8' });
  expect(cc.status, cc.stderr).toBe(0);
  return { ...process.env, PLEXUS_HOME: '', LD_PRELOAD: so, PLEXUS_TEST_REFUSE_WRITES: fs.realpathSync(file) };
}

describe('suspended pairs (PSUE)', () => {
  it('a duplexed write the secondary refuses: volume write succeeds and says on stderr which pair went to PSUE and why', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's', '--granularity', '64K');
    const env = refusingWrites(s.dir, volumeFiles(s.home, 's').img);
    const write = (offset: number, byte: number) =>
      spawnSync(process.execPath, [CLI, '--home', s.home, 'volume', 'write', 'p', '--offset', String(offset), '--pattern', String(byte), '--length', String(G)], {
        encoding: 'utf8',
        env,
      });
    const r = write(2 * G, 5);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`wrote ${G} bytes to p at offset ${2 * G}\n`);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^warning: pair p → s suspended \(PSUE\): .*[Ii]nput\/output error.*; the data is on p, `plexus pair resync p --plex s` will copy the difference$/);
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PSUE', dirtyBytes: G, lastError: expect.stringMatching(/[Ii]nput\/output error/) });
    // Already suspended: the next write is tracked, not duplexed, and says nothing more.
    const again = write(5 * G, 6);
    expect([again.status, again.stderr]).toEqual([0, '']);

    // The library tells its caller too: a callback and the handle's list.
    const script = `
      const { Home, Mirrors } = await import(${JSON.stringify(DIST)});
      const told = [];
      const io = await new Mirrors(Home.open(${JSON.stringify(s.home)})).openIo('p', { write: true, onSuspend: (x) => told.push(x) });
      io.write(0, Buffer.alloc(${G}, 1));
      const listed = io.suspended;
      io.close();
      console.log(JSON.stringify({ told, listed }));`;
    // Put the pair back in PAIR without the shim, then write through the library with it.
    ok(s.home, 'pair', 'resync', 'p');
    expect(sum(s.home, 's')).toBe(sum(s.home, 'p'));
    const lib = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env });
    expect(lib.status, lib.stderr).toBe(0);
    const out = JSON.parse(lib.stdout) as { told: unknown[]; listed: unknown[] };
    const one = { primary: 'p', secondary: 's', reason: expect.stringMatching(/[Ii]nput\/output error/), full: false };
    expect(out).toEqual({ told: [one], listed: [one] });

    // Without the fault, the resync copies only what the suspended pair recorded.
    const [rs] = json<ResyncResult[]>(ok(s.home, 'pair', 'resync', 'p', '--json').stdout);
    expect(rs!.bytesCopied).toBe(G);
    expect(sum(s.home, 's')).toBe(sum(s.home, 'p'));
  });

  it('a secondary that is gone suspends the pair; its bitmaps keep recording and the resync is differential', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    const img = volumeFiles(s.home, 's').img;
    fs.renameSync(img, `${img}.away`);
    put(s.home, 'p', 3 * G + 10, 100, 1);
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PSUE', lastError: expect.stringContaining('secondary unavailable') });
    put(s.home, 'p', 6 * G, 2 * G, 2);
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PSUE', dirtyBytes: 3 * G });
    fs.renameSync(`${img}.away`, img);
    const [r] = json<ResyncResult[]>(ok(s.home, 'pair', 'resync', 'p', '--json').stdout);
    expect(r!.bytesCopied).toBe(3 * G);
    expect(sum(s.home, 's')).toBe(sum(s.home, 'p'));
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PAIR', lastError: null });
  });

  it('an owner killed after writes to a mirrored primary leaves the pair suspended with those regions, never cleared by a split', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    // The duplexed write's second half never happens: the owner writes the primary
    // through the pair, then the secondary is put back as it was, as if the process
    // had died between the two writes.
    const before = fs.readFileSync(volumeFiles(s.home, 's').img);
    const script = `
      const { Home, Mirrors } = await import(${JSON.stringify(DIST)});
      const io = await new Mirrors(Home.open(${JSON.stringify(s.home)})).openIo('p', { write: true });
      io.write(${5 * G}, Buffer.alloc(4096, 0xab));
      process.kill(process.pid, 'SIGKILL');`;
    const k = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(k.signal, k.stderr).toBe('SIGKILL');
    fs.writeFileSync(volumeFiles(s.home, 's').img, before);
    expect(sum(s.home, 's')).not.toBe(sum(s.home, 'p'));
    // display shows what the next owner will find, without writing anything: the write
    // intent of the 4 MiB extent holding the write (docs/bitmap-sidecar.md, "Intent extents").
    const extent = 4 * 1024 * 1024;
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PSUE', dirtyBytes: extent });
    // The next owner finds the region recorded: the pair cannot claim to be mirrored.
    put(s.home, 'p', 0, 16, 3);
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PSUE', lastError: expect.stringContaining('died during mirrored writes') });
    expectFailure(plexus(s.home, 'pair', 'split', 'p'), 'E_STATE', 'PSUE');
    const [r] = json<ResyncResult[]>(ok(s.home, 'pair', 'resync', 'p', '--json').stdout);
    // The later write at 0 lies in the same extent.
    expect(r!.bytesCopied).toBe(extent);
    expect(sum(s.home, 's')).toBe(sum(s.home, 'p'));
  });
});
