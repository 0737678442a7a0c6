import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { removeLibrary } from '../../src/backup/libraries.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { Library } from '../../src/tape/library.js';
import { library, notAvailable, resources, useHome, withInventory } from './helpers.js';

const h = useHome();

describe('inventory', () => {
  it('starts with the default topology and registers libraries, drives and cartridges from disk', () => {
    const lib = library(h.home, 'lib', 2);
    const all = resources(h.home);
    const names = (kind: string): string[] => [...all.values()].filter((r) => r.kind === kind).map((r) => r.name);
    expect(names('server')).toEqual(['server0', 'server1']);
    expect(names('copy-device')).toEqual(['xcopy0', 'xcopy1']);
    expect(names('switch')).toEqual(['fc0', 'fc1']);
    expect(names('library')).toEqual(['lib']);
    expect(names('drive')).toEqual(['lib/drive0', 'lib/drive1']);
    expect(names('cartridge')).toEqual(lib.config.cartridges.map((c) => c.barcode));
    expect(all.get('fc0')!.connects).toEqual(['lib', 'server0', 'storage', 'xcopy0']);
    expect(all.get('fc1')!.connects).toEqual(['lib', 'server1', 'storage', 'xcopy1']);
    expect(all.get('lib/drive1')).toMatchObject({ library: 'lib', state: 'available', jobId: null });
    expect(notAvailable(h.home)).toEqual([]);

    // A library created later is linked to the switches that link every library known
    // before it; a switch cabled to some libraries only is left alone.
    withInventory(h.home, (inv) => {
      inv.add('switch', 'fcall', { connects: ['storage', 'lib'] });
      inv.add('switch', 'fcsome', { connects: ['storage'] });
    });
    library(h.home, 'second', 1);
    const linked = (l: string): string[] =>
      withInventory(h.home, (inv) =>
        inv
          .links()
          .filter((k) => k.endpoint === l)
          .map((k) => k.switch),
      );
    expect(linked('second')).toEqual(['fc0', 'fc1', 'fcall']);

    // A removed library's rows and links go with it.
    const catalog = Catalog.open(h.home);
    removeLibrary(h.home, catalog, 'second');
    catalog.close();
    const after = resources(h.home);
    expect([...after.keys()].filter((n) => n.startsWith('second'))).toEqual([]);
    expect(withInventory(h.home, (inv) => inv.links()).some((l) => l.endpoint === 'second')).toBe(false);
  });

  it('shows a drive whose lock another job holds as in use, with its pid', async () => {
    const lib = library(h.home, 'lib', 2);
    const claim = await Library.open(h.home, 'lib').claimDrive({ timeoutMs: 0 });
    try {
      claim.setLoaded(lib.config.cartridges[0]!.barcode);
      const d = resources(h.home).get('lib/drive0')!;
      expect(d).toMatchObject({ state: 'in-use', pid: process.pid, jobId: null, detail: `loaded ${lib.config.cartridges[0]!.barcode}` });
      expect(resources(h.home).get('lib')!.detail).toBe('3 slots, 2 drives, 1 in use');
    } finally {
      claim.release();
    }
    expect(resources(h.home).get('lib/drive0')!.state).toBe('available');
  });

  it('adds, connects and removes servers, copy devices and switches', () => {
    library(h.home, 'lib', 1);
    withInventory(h.home, (inv) => {
      inv.add('server', 'server2', { connects: ['fc0'], detail: 'spare' });
      inv.add('copy-device', 'xcopy2');
      const sw = inv.add('switch', 'fc2', { connects: ['storage', 'xcopy2', 'lib', 'fc1'] });
      expect(sw.connects).toEqual(['fc1', 'lib', 'storage', 'xcopy2']);
      expect(inv.get('fc0').connects).toContain('server2');
      expect(inv.get('server2')).toMatchObject({ kind: 'server', state: 'available', detail: 'spare' });

      const code = (fn: () => unknown): string | undefined => {
        try {
          fn();
        } catch (e) {
          return (e as { code?: string }).code;
        }
        return undefined;
      };
      expect(code(() => inv.add('server', 'server2'))).toBe('E_EXISTS');
      expect(code(() => inv.add('server', 'LIB001L9'))).toBe('E_EXISTS');
      expect(code(() => inv.add('switch', 'fc3', { connects: ['nope'] }))).toBe('E_NOENT');
      expect(code(() => inv.add('switch', 'fc3', { connects: ['lib/drive0'] }))).toBe('E_INVALID');
      expect(code(() => inv.add('server', 'server3', { connects: ['storage'] }))).toBe('E_INVALID');
      expect(code(() => inv.add('server', 'storage'))).toBe('E_INVALID');
      expect(code(() => inv.add('server', 'bad name'))).toBe('E_INVALID');
      expect(code(() => inv.add('drive' as 'server', 'x'))).toBe('E_INVALID');
      expect(code(() => inv.remove('lib/drive0'))).toBe('E_INVALID');
      expect(code(() => inv.remove('nope'))).toBe('E_NOENT');
      expect(code(() => inv.list({ kind: 'nope' as 'server' }))).toBe('E_INVALID');

      expect(inv.remove('xcopy2')).toEqual({ links: 1 });
      expect(inv.remove('fc2')).toEqual({ links: 3 });
      expect(inv.get('fc1').connects).not.toContain('fc2');
      expect(inv.list({ kind: 'copy-device' }).map((r) => r.name)).toEqual(['xcopy0', 'xcopy1']);
    });
  });

  it('marks resources unavailable and available, never in use by hand', () => {
    library(h.home, 'lib', 1);
    withInventory(h.home, (inv) => {
      expect(inv.setState('server0', 'unavailable').state).toBe('unavailable');
      expect(inv.setState('lib/drive0', 'unavailable').state).toBe('unavailable');
      expect(inv.setState('server0', 'available').state).toBe('available');
      expect(() => inv.setState('server0', 'in-use')).toThrow(expect.objectContaining({ code: 'E_INVALID' }));
      expect(() => inv.setState('nope', 'unavailable')).toThrow(expect.objectContaining({ code: 'E_NOENT' }));
    });
    expect(notAvailable(h.home)).toEqual(['lib/drive0:unavailable']);
    expect(fs.readFileSync(`${h.home.dir}/logs/backup-manager.log`, 'utf8')).toMatch(/server server0 set unavailable\n.*drive lib\/drive0 set unavailable\n.*server server0 set available/);
  });
});
