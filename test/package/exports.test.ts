/**
 * The package as a library user sees it: `import ... from 'plexus'` through the exports
 * map of package.json (Node resolves a package's own name from inside it). Runs dist/, so
 * `npm run build:ts` first, as for the CLI tests.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { scratchDir } from '../helpers/home.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function node(script: string, cwd: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd, encoding: 'utf8', env: { ...process.env, PLEXUS_HOME: '' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe("import from 'plexus'", () => {
  it('exports the whole library: volumes, mirrors, backup, tape, catalog, resources', () => {
    const r = node(
      `import * as p from 'plexus';
       const want = ['PlexusError', 'Home', 'VolumeStore', 'copyVolume', 'writeFileToVolume', 'readVolumeToFile', 'Mirrors', 'removeVolume', 'copyToVolume', 'runInBackground',
         'promote', 'Library', 'Catalog', 'runBackup', 'restoreJob', 'rebuildCatalog', 'addSchedule', 'runDue', 'createLibrary', 'Inventory', 'injectFault', 'faultsFor', 'Fabric', 'runDemo'];
       console.log(JSON.stringify(want.filter((k) => typeof p[k] !== 'function')));`,
      ROOT,
    );
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual([]);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { types: string }> };
    expect(fs.existsSync(path.join(ROOT, pkg.exports['.']!.types))).toBe(true);
  });

  it('works as a library: a home, a volume written from a file, copied and read back, a paired volume kept', () => {
    const s = scratchDir('plexus-pkg-test-');
    try {
      fs.writeFileSync(path.join(s.dir, 'in.bin'), Buffer.alloc(65536, 7));
      const r = node(
        `import { Home, VolumeStore, Mirrors, writeFileToVolume, readVolumeToFile, removeVolume, copyToVolume } from 'plexus';
         import fs from 'node:fs';
         const home = Home.open(${JSON.stringify(path.join(s.dir, 'home'))});
         const store = new VolumeStore(home);
         const a = store.create('a', { size: 1 << 20 });
         writeFileToVolume(a, 4096, ${JSON.stringify(path.join(s.dir, 'in.bin'))});
         const mirrors = new Mirrors(home);
         const c = await copyToVolume(mirrors, 'a', 'b', {});
         readVolumeToFile(store.open('b'), 4096, 65536, ${JSON.stringify(path.join(s.dir, 'out.bin'))});
         store.create('c', { size: 1 << 20 });
         await mirrors.create('a', 'c', {});
         let refused = '';
         try { removeVolume(mirrors, 'c'); } catch (e) { refused = e.code; }
         console.log(JSON.stringify({ created: c.created, same: fs.readFileSync(${JSON.stringify(path.join(s.dir, 'out.bin'))}).equals(Buffer.alloc(65536, 7)), refused, names: store.names() }));`,
        ROOT,
      );
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout)).toEqual({ created: true, same: true, refused: 'E_BUSY', names: ['a', 'b', 'c'] });
    } finally {
      s.cleanup();
    }
  });

  it('does not expose the internals: only the exports map is importable', () => {
    const r = node(`import('plexus/dist/cli/main.js').then(() => console.log('importable'), (e) => console.log(e.code));`, ROOT);
    expect(r.stdout.trim()).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });
});
