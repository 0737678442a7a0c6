import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PlexusError } from '../../src/errors.js';
import { injectFault } from '../../src/resources/faults.js';
import { releaseAll, type SecuredStream, secureStreams } from '../../src/resources/streams.js';
import { Library } from '../../src/tape/library.js';
import { job, library, notAvailable, resources, useHome, withInventory } from './helpers.js';

const h = useHome();

/** What secureStreams threw. */
async function failure(p: Promise<unknown>): Promise<PlexusError> {
  try {
    await p;
  } catch (e) {
    return e as PlexusError;
  }
  throw new Error('expected secureStreams to fail');
}

/** Nothing held: every resource available and no drive or cartridge lock taken. */
function expectAllFree(...libs: string[]): void {
  expect(notAvailable(h.home)).toEqual([]);
  for (const name of libs) {
    const lib = Library.open(h.home, name);
    expect(lib.drives().filter((d) => d.busy)).toEqual([]);
    for (const c of lib.config.cartridges) {
      const lock = lib.tryClaimCartridge(c.barcode);
      expect(lock, `cartridge ${c.barcode} is still locked`).toBeDefined();
      lock!.release();
    }
  }
}

function log(): string {
  return fs.readFileSync(path.join(h.home.dir, 'logs', 'backup-manager.log'), 'utf8');
}

describe('securing streams', () => {
  it('secures two independent streams: distinct drives, movers, cartridges and disjoint switch paths', async () => {
    library(h.home, 'lib', 2);
    const streams = await secureStreams(h.home, { jobId: job(h.home, 7), count: 2, mover: 'server' });
    try {
      expect(streams.map((s) => [s.stream, s.mover.name, s.driveName, s.path])).toEqual([
        [0, 'server0', 'lib/drive0', ['fc0']],
        [1, 'server1', 'lib/drive1', ['fc1']],
      ]);
      expect(new Set(streams.map((s) => s.cartridge.barcode)).size).toBe(2);
      expect(streams.every((s) => s.library.name === 'lib' && s.drive.library.name === 'lib')).toBe(true);
      const all = resources(h.home);
      for (const s of streams) {
        for (const name of s.resources) expect(all.get(name)).toMatchObject({ state: 'in-use', jobId: 7, stream: s.stream, pid: process.pid });
      }
      // Two of each (mover, drive, cartridge, switch); the copy devices, the library itself and the third cartridge stay available.
      expect(notAvailable(h.home)).toHaveLength(8);
      expect(
        Library.open(h.home, 'lib')
          .drives()
          .map((d) => d.busy),
      ).toEqual([true, true]);
      expect(streams[0]!.check()).toEqual({ unavailable: [], lost: [], fault: { failAfterBytes: null, hang: false, hangAfterBytes: null, unavailable: false, targets: [] } });
    } finally {
      releaseAll(streams);
    }
    expectAllFree('lib');
    releaseAll(streams); // idempotent
    streams[0]!.release();
    expect(log()).toMatch(/job 7: secured stream 0: server server0, drive lib\/drive0, cartridge \w+, switches fc0\n/);
    expect(log()).toMatch(/job 7: released streams 0, 1\n/);
  });

  it('uses copy devices as movers and spreads streams over libraries', async () => {
    library(h.home, 'a', 1);
    library(h.home, 'b', 1);
    const streams = await secureStreams(h.home, { jobId: job(h.home, 1), mover: 'copy-device' });
    try {
      expect(streams.map((s) => [s.mover, s.library.name, s.path])).toEqual([
        [{ name: 'xcopy0', kind: 'copy-device' }, 'a', ['fc0']],
        [{ name: 'xcopy1', kind: 'copy-device' }, 'b', ['fc1']],
      ]);
    } finally {
      releaseAll(streams);
    }
    expectAllFree('a', 'b');
  });

  it('fails with E_RESOURCES naming the drive shortage, and releases everything it took', async () => {
    library(h.home, 'lib', 1);
    const e = await failure(secureStreams(h.home, { jobId: job(h.home, 3), count: 2, mover: 'server' }));
    expect(e).toBeInstanceOf(PlexusError);
    expect(e.code).toBe('E_RESOURCES');
    expect(e.message).toBe('secured 1 of 2 streams: no free drive in library lib (1 drive, 1 in use)');
    expectAllFree('lib');
    expect(log()).toMatch(/job 3: cannot secure 2 server streams: secured 1 of 2 streams: no free drive in library lib \(1 drive, 1 in use\); released everything taken\n/);
  });

  it('counts drives marked unavailable, and skips them', async () => {
    library(h.home, 'lib', 2);
    withInventory(h.home, (inv) => inv.setState('lib/drive0', 'unavailable'));
    const [one] = await secureStreams(h.home, { jobId: job(h.home, 1), count: 1 });
    expect(one!.driveName).toBe('lib/drive1');
    one!.release();
    const e = await failure(secureStreams(h.home, { jobId: job(h.home, 2), count: 2 }));
    expect(e.message).toBe('secured 1 of 2 streams: no free drive in library lib (2 drives, 1 in use, 1 unavailable)');
    expect(notAvailable(h.home)).toEqual(['lib/drive0:unavailable']);
  });

  it('an unavailable switch forces the other path, or failure', async () => {
    library(h.home, 'lib', 2);
    withInventory(h.home, (inv) => inv.setState('fc0', 'unavailable'));
    const [one] = await secureStreams(h.home, { jobId: job(h.home, 1), count: 1 });
    expect([one!.mover.name, one!.path]).toEqual(['server1', ['fc1']]);
    one!.release();

    const e = await failure(secureStreams(h.home, { jobId: job(h.home, 2), count: 2 }));
    expect(e.code).toBe('E_RESOURCES');
    expect(e.message).toBe('secured 1 of 2 streams: no path of available switches from storage through server0 to library lib (switches: fc0 unavailable, fc1 taken by stream 0) for stream 1');
    expect(notAvailable(h.home)).toEqual(['fc0:unavailable']);
    expectAllFreeLocks('lib');

    // With the second switch faulted too, not even one stream.
    injectFault(h.home, 'fc1', { unavailable: true });
    const none = await failure(secureStreams(h.home, { jobId: job(h.home, 3), count: 1 }));
    expect(none.message).toMatch(/^secured 0 of 1 stream: no path of available switches .*fc0 unavailable, fc1 unavailable \(fault\)/);
  });

  it('two jobs never share a switch or a mover', async () => {
    library(h.home, 'lib', 4, 6);
    const first = await secureStreams(h.home, { jobId: job(h.home, 1), count: 1 });
    const second = await secureStreams(h.home, { jobId: job(h.home, 2), count: 1 });
    try {
      expect([first[0]!.mover.name, first[0]!.path, second[0]!.mover.name, second[0]!.path]).toEqual(['server0', ['fc0'], 'server1', ['fc1']]);
      const e = await failure(secureStreams(h.home, { jobId: job(h.home, 3), count: 1, mover: 'copy-device' }));
      expect(e.message).toMatch(/^secured 0 of 1 stream: no path .*fc0 in use by job 1 stream 0 \(process \d+\), fc1 in use by job 2 stream 0/);
      const e2 = await failure(secureStreams(h.home, { jobId: job(h.home, 3), count: 1 }));
      expect(e2.message).toMatch(/^secured 0 of 1 stream: no available server \(2 servers: server0 in use by job 1 stream 0/);
    } finally {
      releaseAll([...first, ...second]);
    }
    expectAllFree('lib');
  });

  it('a resource marked unavailable while held: the job sees it, and it stays unavailable after release', async () => {
    library(h.home, 'lib', 2);
    const streams: SecuredStream[] = await secureStreams(h.home, { jobId: job(h.home, 5) });
    const s = streams[1]!;
    withInventory(h.home, (inv) => {
      const r = inv.setState(s.mover.name, 'unavailable');
      expect(r).toMatchObject({ state: 'unavailable', jobId: 5, stream: 1 });
      expect(() => inv.setState(streams[0]!.mover.name, 'available')).toThrow(expect.objectContaining({ code: 'E_STATE' }));
      expect(() => inv.remove(streams[0]!.mover.name)).toThrow(expect.objectContaining({ code: 'E_STATE' }));
    });
    expect(s.check()).toMatchObject({ unavailable: [s.mover.name], lost: [] });
    // Marking it available again gives it back to its holder.
    withInventory(h.home, (inv) => inv.setState(s.mover.name, 'available'));
    expect(resources(h.home).get(s.mover.name)).toMatchObject({ state: 'in-use', jobId: 5, stream: 1 });
    withInventory(h.home, (inv) => inv.setState(s.mover.name, 'unavailable'));
    releaseAll(streams);
    expect(resources(h.home).get(s.mover.name)).toMatchObject({ state: 'unavailable', jobId: null, stream: null, pid: null });
    expect(notAvailable(h.home)).toEqual([`${s.mover.name}:unavailable`]);
  });

  it('refuses bad options', async () => {
    library(h.home, 'lib', 2);
    expect((await failure(secureStreams(h.home, { jobId: job(h.home, 1), count: 0 }))).code).toBe('E_INVALID');
    expect((await failure(secureStreams(h.home, { jobId: -1 }))).code).toBe('E_INVALID');
    expect((await failure(secureStreams(h.home, { jobId: job(h.home, 1), mover: 'tape' as 'server' }))).code).toBe('E_INVALID');
    expect((await failure(secureStreams(h.home, { jobId: job(h.home, 1), library: 'nope' }))).code).toBe('E_NOENT');
    expectAllFree('lib');
  });
});

function expectAllFreeLocks(name: string): void {
  expect(
    Library.open(h.home, name)
      .drives()
      .filter((d) => d.busy),
  ).toEqual([]);
}
