/** The volume library's entry points throw only PlexusErrors: a raw fs failure becomes
 * its coded error naming the path, a programming bug stays E_INTERNAL. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'vitest';
import { Home, readVolumeInPieces, readVolumeToFile, VolumeStore, writeFileToVolume } from '../../src/index.js';
import { expectCoded, thrown } from '../helpers/errors.js';
import { scratchDir } from '../helpers/home.js';

let scratch: ReturnType<typeof scratchDir>;
let store: VolumeStore;

beforeEach(() => {
  scratch = scratchDir();
  store = new VolumeStore(Home.open(scratch.dir));
});
afterEach(() => scratch.cleanup());

describe('VolumeStore errors', () => {
  it('a raw fs failure is a coded PlexusError naming the path', async () => {
    store.create('v', { size: 1 << 20 });
    // The data file is gone behind the store: recording a staged copy of it must say so.
    fs.rmSync(store.file('v'));
    expectCoded(await thrown(() => store.markStaged('v', 'p', new Date().toISOString())), 'E_NOENT', store.file('v'));
    // The volumes directory is not a directory.
    fs.rmSync(store.home.volumesDir, { recursive: true });
    fs.writeFileSync(store.home.volumesDir, 'not a directory');
    expectCoded(await thrown(() => store.names()), 'E_NOENT', store.home.volumesDir);
  });

  it('a programming bug stays E_INTERNAL', async () => {
    expectCoded(await thrown(() => store.create('v', null as never)), 'E_INTERNAL', 'TypeError');
  });
});

describe('volume file transfers', () => {
  it('a raw fs failure is a coded PlexusError naming the file', async () => {
    const v = store.create('v', { size: 1 << 20 });
    const dir = path.join(scratch.dir, 'a-directory');
    fs.mkdirSync(dir);
    expectCoded(await thrown(() => writeFileToVolume(v, 0, dir)), 'E_INVALID', dir);
    const nowhere = path.join(scratch.dir, 'missing', 'out.bin');
    expectCoded(await thrown(() => readVolumeToFile(v, 0, 4096, nowhere)), 'E_NOENT', nowhere);
    const sinkFailure = Object.assign(new Error('EPIPE: broken pipe, write'), { code: 'EPIPE' });
    expectCoded(
      await thrown(() =>
        readVolumeInPieces(v, 0, 4096, () => {
          throw sinkFailure;
        }),
      ),
      'E_IO',
      'broken pipe',
    );
  });

  it('a programming bug stays E_INTERNAL', async () => {
    expectCoded(await thrown(() => readVolumeToFile(null as never, 0, 4096, path.join(scratch.dir, 'x'))), 'E_INTERNAL', 'TypeError');
  });
});
