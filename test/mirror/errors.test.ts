/** Mirrors' entry points throw only PlexusErrors: a raw fs failure becomes its coded
 * error naming the path, a programming bug stays E_INTERNAL. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Home, Mirrors, PlexusError, VolumeStore } from '../../src/index.js';
import { expectCoded, thrown } from '../helpers/errors.js';
import { scratchDir } from '../helpers/home.js';

let scratch: ReturnType<typeof scratchDir>;
let mirrors: Mirrors;

beforeEach(async () => {
  scratch = scratchDir();
  const home = Home.open(scratch.dir);
  const store = new VolumeStore(home);
  store.create('p', { size: 1 << 20 });
  store.create('s', { size: 1 << 20 });
  mirrors = new Mirrors(home);
  await mirrors.create('p', 's');
});
afterEach(() => scratch.cleanup());

describe('Mirrors errors', () => {
  it('an unreadable pair record is a coded PlexusError naming it', async () => {
    const rec = mirrors.records.file('s');
    fs.rmSync(rec);
    fs.mkdirSync(rec);
    expectCoded(await thrown(() => mirrors.display()), 'E_INVALID', rec);
  });

  it('an owner marker that cannot be written is a coded PlexusError naming it', async () => {
    const marker = path.join(mirrors.records.dir, 'p.open');
    fs.mkdirSync(path.join(marker, 'in-the-way'), { recursive: true });
    const e = await thrown(() => mirrors.openIo('p', { write: true }));
    expect(e).toBeInstanceOf(PlexusError);
    expect((e as PlexusError).code).not.toBe('E_INTERNAL');
    expect((e as Error).message).toContain(marker);
  });

  it('a programming bug stays E_INTERNAL', async () => {
    expectCoded(await thrown(() => mirrors.display(null as never)), 'E_INTERNAL', 'TypeError');
  });
});
