import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { plexus } from '../helpers/home.js';
import { expectFailure, KiB, listNames, MiB, ok, useScratch, volumeFiles } from './cli-helpers.js';

const s = useScratch();

interface Info {
  name: string;
  id: string;
  size: number;
  blockSize: number;
  created: string;
  path: string;
}

function createJson(home: string, name: string, ...opts: string[]): Info {
  const r = ok(home, 'volume', 'create', name, ...opts, '--json');
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as Info;
}

describe('plexus volume create', () => {
  it('creates a 1M volume with the default 4K block size and prints it as JSON', () => {
    const i = createJson(s.home, 'one', '--size', '1M');
    expect(i.name).toBe('one');
    expect(i.id).toMatch(/^[0-9a-f]{32}$/);
    expect(i.size).toBe(MiB);
    expect(i.blockSize).toBe(4096);
    expect(Number.isNaN(Date.parse(i.created))).toBe(false);
    const { img, meta } = volumeFiles(s.home, 'one');
    expect(i.path).toBe(img);
    expect(fs.statSync(img).size).toBe(MiB);
    expect(fs.existsSync(meta)).toBe(true);
  });

  it('accepts 64KiB with a 4K block size', () => {
    const i = createJson(s.home, 'small', '--size', '64KiB', '--block-size', '4K');
    expect(i.size).toBe(64 * KiB);
    expect(i.blockSize).toBe(4096);
  });

  it('accepts other size spellings and block sizes', () => {
    expect(createJson(s.home, 'a', '--size', '512', '--block-size', '512').size).toBe(512);
    expect(createJson(s.home, 'b', '--size', '2m', '--block-size', '1M')).toMatchObject({ size: 2 * MiB, blockSize: MiB });
    expect(createJson(s.home, 'c', '--size', '128K', '--block-size', '64KiB')).toMatchObject({ size: 128 * KiB, blockSize: 64 * KiB });
    expect(createJson(s.home, 'd', '--size', '8192')).toMatchObject({ size: 8192, blockSize: 4096 });
  });

  it('prints a one-line summary without --json', () => {
    const r = ok(s.home, 'volume', 'create', 'text', '--size', '1M', '--block-size', '8K');
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^created volume text: 1\.00 MiB, block size 8192, id [0-9a-f]{32}\n$/);
  });

  it('gives every volume its own identifier', () => {
    const a = createJson(s.home, 'a', '--size', '64K');
    const b = createJson(s.home, 'b', '--size', '64K');
    expect(a.id).not.toBe(b.id);
  });

  it('refuses to create a volume twice with E_EXISTS and leaves the first intact', () => {
    const first = createJson(s.home, 'dup', '--size', '1M');
    expectFailure(plexus(s.home, 'volume', 'create', 'dup', '--size', '2M'), 'E_EXISTS', 'dup');
    const shown = JSON.parse(ok(s.home, 'volume', 'show', 'dup', '--json').stdout) as Info;
    expect(shown).toEqual(first);
  });
});

describe('plexus volume list', () => {
  it('says there are no volumes in an empty home, and --json gives []', () => {
    ok(s.home, 'init');
    expect(ok(s.home, 'volume', 'list').stdout).toBe('no volumes\n');
    expect(JSON.parse(ok(s.home, 'volume', 'list', '--json').stdout)).toEqual([]);
  });

  it('lists volumes sorted by name, in text and JSON, matching create', () => {
    const b = createJson(s.home, 'beta', '--size', '64K');
    const a = createJson(s.home, 'alpha', '--size', '1M', '--block-size', '8K');
    const json = JSON.parse(ok(s.home, 'volume', 'list', '--json').stdout) as Info[];
    expect(json).toEqual([a, b]);

    const text = ok(s.home, 'volume', 'list').stdout.trimEnd().split('\n');
    expect(text).toHaveLength(3);
    expect(text[0]).toMatch(/^NAME\s+SIZE\s+ALLOCATED\s+BLOCK\s+ID\s+CREATED$/);
    // Fresh volumes are holes: nothing allocated.
    expect(text[1]).toMatch(new RegExp(`^alpha\\s+1\\.00 MiB\\s+0 B\\s+8192\\s+${a.id}\\s+${a.created.replace(/\./g, '\\.')}$`));
    expect(text[2]).toMatch(new RegExp(`^beta\\s+64\\.0 KiB\\s+0 B\\s+4096\\s+${b.id}\\s+`));
  });
});

describe('plexus volume show', () => {
  it('shows a volume in text and JSON with fields matching create', () => {
    const c = createJson(s.home, 'vol1', '--size', '1M', '--block-size', '16K');
    const json = JSON.parse(ok(s.home, 'volume', 'show', 'vol1', '--json').stdout) as Info;
    expect(json).toEqual(c);

    const text = ok(s.home, 'volume', 'show', 'vol1').stdout;
    const fields = Object.fromEntries(
      text
        .trimEnd()
        .split('\n')
        .map((l) => {
          const m = /^([a-z ]+):\s+(.*)$/.exec(l);
          expect(m, l).not.toBeNull();
          return [m![1], m![2]];
        }),
    );
    expect(fields).toEqual({
      name: 'vol1',
      id: c.id,
      size: `${MiB} (1.00 MiB)`,
      allocated: '0 (0 B)',
      'block size': '16384',
      created: c.created,
      path: c.path,
    });
  });
});

describe('plexus volume rm', () => {
  it('removes the data and identity files and the volume leaves the listing', () => {
    createJson(s.home, 'gone', '--size', '1M');
    createJson(s.home, 'stays', '--size', '64K');
    const { img, meta } = volumeFiles(s.home, 'gone');
    expect(fs.existsSync(img) && fs.existsSync(meta)).toBe(true);

    const r = ok(s.home, 'volume', 'rm', 'gone');
    expect(r.stdout).toBe('removed volume gone\n');
    expect(r.stderr).toBe('');
    expect(fs.existsSync(img)).toBe(false);
    expect(fs.existsSync(meta)).toBe(false);
    expect(listNames(s.home)).toEqual(['stays']);
    expect(ok(s.home, 'volume', 'list').stdout).not.toContain('gone');
    expect(fs.readdirSync(path.join(s.home, 'volumes')).sort()).toEqual(['stays.img', 'stays.img.meta']);
  });

  it('lets a removed name be created again with a new identifier', () => {
    const a = createJson(s.home, 'again', '--size', '64K');
    ok(s.home, 'volume', 'rm', 'again');
    const b = createJson(s.home, 'again', '--size', '128K');
    expect(b.id).not.toBe(a.id);
    expect(b.size).toBe(128 * KiB);
  });

  it('fails with E_NOENT for a second rm', () => {
    createJson(s.home, 'once', '--size', '64K');
    ok(s.home, 'volume', 'rm', 'once');
    expectFailure(plexus(s.home, 'volume', 'rm', 'once'), 'E_NOENT', 'once');
  });
});
