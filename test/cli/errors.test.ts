import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { plexus } from '../helpers/home.js';
import { checksum, expectFailure, listNames, ok, useScratch } from './cli-helpers.js';

const s = useScratch();

/** The home's volumes directory listing (to prove nothing stray was left). */
function volumeDirFiles(): string[] {
  const dir = path.join(s.home, 'volumes');
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

describe('unknown volumes', () => {
  const cases: Array<[string, string[]]> = [
    ['show', ['volume', 'show', 'ghost-vol']],
    ['show --json', ['volume', 'show', 'ghost-vol', '--json']],
    ['rm', ['volume', 'rm', 'ghost-vol']],
    ['read', ['volume', 'read', 'ghost-vol']],
    ['read --to', ['volume', 'read', 'ghost-vol', '--to', '__TO__']],
    ['checksum', ['volume', 'checksum', 'ghost-vol']],
    ['write --pattern', ['volume', 'write', 'ghost-vol', '--pattern', '1', '--length', '4K']],
    ['write --random', ['volume', 'write', 'ghost-vol', '--random', '4K']],
    ['copy (as source)', ['copy', 'ghost-vol', 'other']],
  ];
  it.each(cases)('%s fails with E_NOENT naming the volume on one line', (_name, args) => {
    ok(s.home, 'init');
    const to = path.join(s.dir, 'out');
    const r = plexus(s.home, ...args.map((a) => (a === '__TO__' ? to : a)));
    expectFailure(r, 'E_NOENT', 'ghost-vol');
    expect(r.stdout).toBe('');
    expect(fs.existsSync(to)).toBe(false);
    expect(listNames(s.home)).toEqual([]);
  });
});

describe('ranges past the end', () => {
  const setup = (): void => {
    ok(s.home, 'volume', 'create', 'v', '--size', '1M');
  };

  it.each([
    ['read, offset past the end', ['volume', 'read', 'v', '--offset', '2M']],
    ['read, range past the end', ['volume', 'read', 'v', '--offset', '1020K', '--length', '8K']],
    ['read --to, offset past the end', ['volume', 'read', 'v', '--offset', '2M', '--to', '__TO__']],
    ['checksum, offset past the end', ['volume', 'checksum', 'v', '--offset', '2M']],
    ['checksum, offset one past the end', ['volume', 'checksum', 'v', '--offset', `${(1 << 20) + 1}`]],
    ['checksum, range past the end', ['volume', 'checksum', 'v', '--offset', '1M', '--length', '1']],
    ['write --pattern, offset past the end', ['volume', 'write', 'v', '--pattern', '0xab', '--length', '4K', '--offset', '2M']],
    ['write --pattern, range past the end', ['volume', 'write', 'v', '--pattern', '0xab', '--length', '8K', '--offset', '1020K']],
    ['write --random, offset past the end', ['volume', 'write', 'v', '--random', '4K', '--offset', '2M']],
    ['write --random, longer than the volume', ['volume', 'write', 'v', '--random', '2M']],
  ])('%s fails with E_RANGE', (_name, args) => {
    setup();
    const to = path.join(s.dir, 'out');
    const r = plexus(s.home, ...(args as string[]).map((a) => (a === '__TO__' ? to : a)));
    expectFailure(r, 'E_RANGE', 'v');
    expect(r.stdout).toBe('');
    expect(fs.existsSync(to)).toBe(false);
  });

  it('write --from a file that does not fit fails with E_RANGE and writes nothing', () => {
    setup();
    const before = checksum(s.home, 'v');
    const f = path.join(s.dir, 'data');
    fs.writeFileSync(f, Buffer.alloc(8192, 0x11));
    expectFailure(plexus(s.home, 'volume', 'write', 'v', '--from', f, '--offset', '1020K'), 'E_RANGE', 'v');
    expectFailure(plexus(s.home, 'volume', 'write', 'v', '--from', f, '--offset', '2M'), 'E_RANGE', 'v');
    expect(checksum(s.home, 'v')).toBe(before);
  });

  it('a failed pattern write leaves the volume unchanged', () => {
    setup();
    const before = checksum(s.home, 'v');
    expectFailure(plexus(s.home, 'volume', 'write', 'v', '--pattern', '0xab', '--length', '8K', '--offset', '1020K'), 'E_RANGE');
    expect(checksum(s.home, 'v')).toBe(before);
  });
});

describe('bad geometry', () => {
  it.each([
    ['3000', '3000'],
    ['256', '256'],
    ['2M', '2097152'],
    ['0', '0'],
  ])('block size %s is refused with E_INVALID', (bs, shown) => {
    expectFailure(plexus(s.home, 'volume', 'create', 'v', '--size', '1M', '--block-size', bs), 'E_INVALID', shown);
    expect(listNames(s.home)).toEqual([]);
    expect(volumeDirFiles()).toEqual([]);
  });

  it('a size that is not a multiple of the block size is refused with E_SIZE', () => {
    expectFailure(plexus(s.home, 'volume', 'create', 'v', '--size', '5000'), 'E_SIZE', '5000');
    expectFailure(plexus(s.home, 'volume', 'create', 'v', '--size', '6K', '--block-size', '4K'), 'E_SIZE', '6144');
    expect(volumeDirFiles()).toEqual([]);
  });

  it('a zero size is refused with E_INVALID', () => {
    expectFailure(plexus(s.home, 'volume', 'create', 'v', '--size', '0'), 'E_INVALID');
    expect(volumeDirFiles()).toEqual([]);
  });
});

describe('malformed sizes', () => {
  it.each(['12Q', '-5', '1.5M', 'abc', '', '1 M M', '0x10'])('size %j is refused with E_INVALID naming the text', (text) => {
    expectFailure(plexus(s.home, 'volume', 'create', 'v', '--size', text), 'E_INVALID', `'${text}'`);
    expect(volumeDirFiles()).toEqual([]);
  });

  it.each(['12Q', '-5', '1.5M', 'abc'])('block size %j is refused with E_INVALID naming the text', (text) => {
    expectFailure(plexus(s.home, 'volume', 'create', 'v', '--size', '1M', '--block-size', text), 'E_INVALID', `'${text}'`);
  });

  it.each([
    ['read --offset', ['volume', 'read', 'v', '--offset', '1.5M']],
    ['read --length', ['volume', 'read', 'v', '--length', 'abc']],
    ['checksum --offset', ['volume', 'checksum', 'v', '--offset', '12Q']],
    ['write --offset', ['volume', 'write', 'v', '--pattern', '1', '--length', '4K', '--offset', '-5']],
    ['write --length', ['volume', 'write', 'v', '--pattern', '1', '--length', '1.5M']],
    ['write --random', ['volume', 'write', 'v', '--random', 'abc']],
  ])('%s with a malformed size is refused with E_INVALID', (_name, args) => {
    ok(s.home, 'volume', 'create', 'v', '--size', '64K');
    const bad = (args as string[]).find((a) => ['1.5M', 'abc', '12Q', '-5'].includes(a))!;
    expectFailure(plexus(s.home, ...(args as string[])), 'E_INVALID', `'${bad}'`);
  });
});

describe('invalid volume names', () => {
  it.each(['../x', '.hidden', 'a/b', 'x.meta', 'a'.repeat(65), 'sp ace'])('%j is refused with E_INVALID', (name) => {
    expectFailure(plexus(s.home, 'volume', 'create', name, '--size', '64K'), 'E_INVALID', 'invalid volume name');
    expect(volumeDirFiles()).toEqual([]);
    expect(fs.readdirSync(s.home).sort()).toEqual(['plexus.json', 'volumes']);
    expect(fs.existsSync(path.join(s.dir, 'x.img'))).toBe(false);
  });

  it.each([
    ['show', ['volume', 'show', '../x']],
    ['rm', ['volume', 'rm', '../x']],
    ['checksum', ['volume', 'checksum', '.hidden']],
    ['read', ['volume', 'read', 'a/b']],
  ])('%s refuses an invalid name with E_INVALID', (_name, args) => {
    ok(s.home, 'init');
    expectFailure(plexus(s.home, ...(args as string[])), 'E_INVALID', 'invalid volume name');
  });

  it('accepts a 64-character name with dots, dashes and underscores', () => {
    const name = `A0._-${'z'.repeat(59)}`;
    expect(name).toHaveLength(64);
    ok(s.home, 'volume', 'create', name, '--size', '64K');
    expect(listNames(s.home)).toEqual([name]);
  });
});

describe('volume write sources', () => {
  const setup = (): void => {
    ok(s.home, 'volume', 'create', 'v', '--size', '64K');
  };

  it.each([
    ['none', ['--length', '4K']],
    ['--pattern and --random', ['--pattern', '1', '--length', '4K', '--random', '4K']],
    ['--pattern and --from', ['--pattern', '1', '--length', '4K', '--from', '__FILE__']],
    ['--random and --from', ['--random', '4K', '--from', '__FILE__']],
    ['all three', ['--pattern', '1', '--length', '4K', '--random', '4K', '--from', '__FILE__']],
  ])('%s is refused with E_INVALID', (_name, opts) => {
    setup();
    const f = path.join(s.dir, 'data');
    fs.writeFileSync(f, Buffer.alloc(16, 1));
    const before = checksum(s.home, 'v');
    const r = plexus(s.home, 'volume', 'write', 'v', ...(opts as string[]).map((o) => (o === '__FILE__' ? f : o)));
    expectFailure(r, 'E_INVALID', '--pattern');
    expect(checksum(s.home, 'v')).toBe(before);
  });

  it('--pattern without --length is refused with E_INVALID', () => {
    setup();
    expectFailure(plexus(s.home, 'volume', 'write', 'v', '--pattern', '1'), 'E_INVALID', '--length');
  });

  it.each(['300', '256', '-1', '0x1ff', 'ab', '1.5'])('pattern %s is refused with E_INVALID', (p) => {
    setup();
    const before = checksum(s.home, 'v');
    expectFailure(plexus(s.home, 'volume', 'write', 'v', '--pattern', p, '--length', '4K'), 'E_INVALID', `'${p}'`);
    expect(checksum(s.home, 'v')).toBe(before);
  });

  it.each(['-1', 'x', '1.5'])('seed %s is refused with E_INVALID', (seed) => {
    setup();
    expectFailure(plexus(s.home, 'volume', 'write', 'v', '--random', '4K', '--seed', seed), 'E_INVALID', `'${seed}'`);
  });

  it('--from a missing file fails with E_NOENT naming the file', () => {
    setup();
    const missing = path.join(s.dir, 'no-such-file');
    expectFailure(plexus(s.home, 'volume', 'write', 'v', '--from', missing), 'E_NOENT', missing);
  });
});

describe('usage errors exit 2', () => {
  it('for an unknown command', () => {
    const r = plexus(s.home, 'frobnicate');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });

  it('for an unknown volume subcommand', () => {
    expect(plexus(s.home, 'volume', 'frobnicate').code).toBe(2);
  });

  it('for an unknown option', () => {
    const r = plexus(s.home, 'volume', 'list', '--bogus');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--bogus');
  });

  it('for a missing required --size', () => {
    const r = plexus(s.home, 'volume', 'create', 'v');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--size');
    expect(volumeDirFiles()).toEqual([]);
  });

  it('for a missing argument', () => {
    expect(plexus(s.home, 'volume', 'show').code).toBe(2);
    expect(plexus(s.home, 'copy', 'only-one').code).toBe(2);
  });

  it('but --help and --version exit 0', () => {
    const h = plexus(s.home, '--help');
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('volume');
    const v = plexus(s.home, '--version');
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe('failed commands leave nothing behind', () => {
  it('the listing and the volumes directory are unchanged after a series of failures', () => {
    ok(s.home, 'volume', 'create', 'keep', '--size', '1M');
    ok(s.home, 'volume', 'write', 'keep', '--random', '1M', '--seed', '4');
    ok(s.home, 'volume', 'create', 'half', '--size', '512K');
    const list = ok(s.home, 'volume', 'list', '--json').stdout;
    const files = volumeDirFiles();
    const sum = checksum(s.home, 'keep');

    const failures: string[][] = [
      ['volume', 'create', 'new1', '--size', '1M', '--block-size', '3000'],
      ['volume', 'create', 'new2', '--size', '1M', '--block-size', '256'],
      ['volume', 'create', 'new3', '--size', '5000'],
      ['volume', 'create', 'new4', '--size', '12Q'],
      ['volume', 'create', 'new5', '--size', '0'],
      ['volume', 'create', 'keep', '--size', '2M'],
      ['volume', 'create', '../new6', '--size', '1M'],
      ['copy', 'keep', 'new7', '--threads', '0'],
      ['copy', 'keep', 'new8', '--chunk', 'abc'],
      ['copy', 'nothere', 'new9'],
      ['copy', 'keep', 'keep'],
      ['copy', 'keep', 'half'],
      ['volume', 'write', 'keep', '--pattern', '1', '--length', '8K', '--offset', '1020K'],
      ['volume', 'rm', 'nothere'],
    ];
    for (const f of failures) {
      const r = plexus(s.home, ...f);
      expect(r.code, f.join(' ')).toBe(1);
      expect(r.stderr.trimEnd().split('\n'), f.join(' ')).toHaveLength(1);
    }
    expect(ok(s.home, 'volume', 'list', '--json').stdout).toBe(list);
    expect(volumeDirFiles()).toEqual(files);
    expect(checksum(s.home, 'keep')).toBe(sum);
  });
});

describe('system errors get Plexus codes', () => {
  it('read --to into a missing directory is E_NOENT, --from a directory is E_INVALID', () => {
    ok(s.home, 'volume', 'create', 'v', '--size', '64K');
    expectFailure(plexus(s.home, 'volume', 'read', 'v', '--to', path.join(s.dir, 'no', 'such', 'f')), 'E_NOENT');
    expectFailure(plexus(s.home, 'volume', 'write', 'v', '--from', s.dir), 'E_INVALID');
  });

  it('a bitmap-range error carries its code once, in the code slot only', async () => {
    const { DirtyBitmap } = await import('../../src/index.js');
    fs.mkdirSync(s.dir, { recursive: true });
    const bm = DirtyBitmap.create(path.join(s.dir, 'x.bitmap'), 65536);
    try {
      bm.mark(65536, 1);
      expect.unreachable();
    } catch (e) {
      expect((e as { code: string }).code).toBe('E_RANGE');
      expect((e as Error).message).not.toContain('E_RANGE');
    }
  });
});

describe('copy option checks come before any volume is created', () => {
  it('--chunk below 4 KiB is E_INVALID and creates no destination', () => {
    ok(s.home, 'volume', 'create', 'a', '--size', '64K');
    for (const chunk of ['0', '3', '2K']) {
      expectFailure(plexus(s.home, 'copy', 'a', 'b', '--chunk', chunk), 'E_INVALID', 'chunk');
    }
    expect(listNames(s.home)).toEqual(['a']);
  });
});
