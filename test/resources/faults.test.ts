import { describe, expect, it } from 'vitest';
import { clearFaults, effectiveFault, faultsFor, injectFault, listFaults } from '../../src/resources/faults.js';
import { releaseAll, secureStreams } from '../../src/resources/streams.js';
import { job, library, resources, useHome } from './helpers.js';

const h = useHome();

describe('fault registry', () => {
  it('injects, replaces, lists and clears faults; E_NOENT for an unknown target', () => {
    library(h.home, 'lib', 2);
    injectFault(h.home, 'lib/drive0', { afterBytes: 4 << 20 });
    injectFault(h.home, 'lib/drive0', { afterBytes: 1 << 20 }); // replaces the first
    injectFault(h.home, 'xcopy0', { hang: true });
    injectFault(h.home, 'fc1', { unavailable: true });
    expect(listFaults(h.home).map((f) => [f.target, f.kind, f.afterBytes])).toEqual([
      ['fc1', 'unavailable', null],
      ['lib/drive0', 'fail-after', 1 << 20],
      ['xcopy0', 'hang', null],
    ]);
    expect(resources(h.home).get('xcopy0')!.faults).toEqual(['hang']);

    expect(() => injectFault(h.home, 'nope', { hang: true })).toThrow(expect.objectContaining({ code: 'E_NOENT' }));
    expect(() => injectFault(h.home, 'fc0', { afterBytes: -1 })).toThrow(expect.objectContaining({ code: 'E_INVALID' }));
    expect(() => injectFault(h.home, 'fc0', { hang: true, unavailable: true } as never)).toThrow(expect.objectContaining({ code: 'E_INVALID' }));
    expect(() => clearFaults(h.home, 'nope')).toThrow(expect.objectContaining({ code: 'E_NOENT' }));

    expect(clearFaults(h.home, 'xcopy0')).toBe(1);
    expect(clearFaults(h.home)).toBe(2);
    expect(listFaults(h.home)).toEqual([]);
  });

  it('combines the faults of a stream: smallest fail-after, any hang, any unavailable', () => {
    library(h.home, 'lib', 2);
    injectFault(h.home, 'lib/drive0', { afterBytes: 8 << 20 });
    injectFault(h.home, 'server0', { afterBytes: 2 << 20 });
    injectFault(h.home, 'fc0', { hang: true });
    expect(faultsFor(h.home, ['server0', 'lib/drive0', 'fc0', 'unknown'])).toEqual({
      failAfterBytes: 2 << 20,
      hang: true,
      hangAfterBytes: 0,
      unavailable: false,
      targets: ['fc0', 'lib/drive0', 'server0'],
    });
    injectFault(h.home, 'xcopy1', { hang: true, afterBytes: 3 << 20 });
    expect(faultsFor(h.home, ['xcopy1'])).toMatchObject({ hang: true, hangAfterBytes: 3 << 20, failAfterBytes: null });
    expect(faultsFor(h.home, ['xcopy1', 'fc0'])).toMatchObject({ hang: true, hangAfterBytes: 0 });
    expect(faultsFor(h.home, ['server1', 'fc1'])).toEqual({ failAfterBytes: null, hang: false, hangAfterBytes: null, unavailable: false, targets: [] });
    expect(effectiveFault([])).toEqual({ failAfterBytes: null, hang: false, hangAfterBytes: null, unavailable: false, targets: [] });
  });

  it('an unavailable fault makes secureStreams skip the resource; a stream sees faults on check', async () => {
    library(h.home, 'lib', 2);
    injectFault(h.home, 'xcopy0', { unavailable: true });
    const [one] = await secureStreams(h.home, { jobId: job(h.home, 1), count: 1, mover: 'copy-device' });
    expect(one!.mover.name).toBe('xcopy1');
    injectFault(h.home, 'lib/drive0', { afterBytes: 1000 });
    injectFault(h.home, one!.driveName, { afterBytes: 5000 });
    injectFault(h.home, 'fc1', { hang: true });
    expect(one!.check().fault).toEqual({ failAfterBytes: 5000, hang: true, hangAfterBytes: 0, unavailable: false, targets: ['fc1', one!.driveName] });
    injectFault(h.home, one!.cartridge.barcode, { unavailable: true });
    expect(one!.check()).toMatchObject({ unavailable: [one!.cartridge.barcode], lost: [], fault: { unavailable: true } });
    one!.release();

    const e = await secureStreams(h.home, { jobId: job(h.home, 2), count: 2, mover: 'copy-device' }).catch((x: unknown) => x);
    expect(e).toMatchObject({
      code: 'E_RESOURCES',
      message: expect.stringMatching(/^secured 1 of 2 streams: no available copy device \(2 copy devices: xcopy0 unavailable \(fault\), xcopy1 taken by stream 0\)$/),
    });
    clearFaults(h.home);
    releaseAll(await secureStreams(h.home, { jobId: job(h.home, 3), count: 2, mover: 'copy-device' }));
  });
});
