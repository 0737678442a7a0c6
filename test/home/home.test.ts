/** The storage home: opening a missing home, and the durability of its marker. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { scratchDir } from '../helpers/home.js';

/** Every open, fsync and rename, in order, with the path each fd was opened on. */
const calls: string[] = [];
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const paths = new Map<number, string>();
  const wrapped = {
    ...real,
    openSync: (p: fs.PathLike, ...rest: unknown[]) => {
      const fd = (real.openSync as (...a: unknown[]) => number)(p, ...rest);
      paths.set(fd, String(p));
      return fd;
    },
    fsyncSync: (fd: number) => {
      calls.push(`fsync ${paths.get(fd)}`);
      return real.fsyncSync(fd);
    },
    renameSync: (a: fs.PathLike, b: fs.PathLike) => {
      calls.push(`rename ${String(a)} ${String(b)}`);
      return real.renameSync(a, b);
    },
  };
  return { ...wrapped, default: wrapped };
});

const { Home } = await import('../../src/home/home.js');

describe('Home', () => {
  let scratch: ReturnType<typeof scratchDir>;
  beforeEach(() => {
    scratch = scratchDir('plexus-home-test-');
    calls.length = 0;
  });
  afterEach(() => scratch.cleanup());

  it('init writes the marker durably: fsync the temporary file, rename it, fsync the directory', () => {
    const root = path.join(scratch.dir, 'h');
    expect(Home.init(root)).toBe(true);
    const marker = path.join(root, 'plexus.json');
    // The new directories' entries first (the scratch dir holds `h`, `h` holds `volumes`),
    // then the marker through a temporary file unique per writer (.plexus.json.PID.RANDOM.tmp).
    expect(calls).toHaveLength(5);
    expect(calls.slice(0, 2)).toEqual([`fsync ${scratch.dir}`, `fsync ${root}`]);
    const tmp = /^fsync (.+)$/.exec(calls[2]!)?.[1] ?? '';
    expect(path.dirname(tmp)).toBe(root);
    expect(path.basename(tmp)).toMatch(/^\.plexus\.json\.\d+\.[0-9a-f]+\.tmp$/);
    expect(calls.slice(3)).toEqual([`rename ${tmp} ${marker}`, `fsync ${root}`]);
    expect(JSON.parse(fs.readFileSync(marker, 'utf8')).format).toBe(1);
    expect(fs.readdirSync(root).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it("a home that cannot be created is refused with the operating system's code, naming it", () => {
    // A file where the home's parent directory should be: ENOTDIR, which is E_NOENT.
    const blocker = path.join(scratch.dir, 'file');
    fs.writeFileSync(blocker, 'x');
    const root = path.join(blocker, 'h');
    expect(() => Home.init(root)).toThrowError(expect.objectContaining({ code: 'E_NOENT', message: expect.stringContaining(`cannot create home ${root}`) }));
  });

  it('open with create: false refuses a missing home, naming it, and creates nothing', () => {
    const root = path.join(scratch.dir, 'typo');
    expect(() => Home.open(root, { create: false })).toThrowError(expect.objectContaining({ code: 'E_NOENT', message: expect.stringContaining(root) }));
    expect(() => Home.open(root, { create: false })).toThrowError(/plexus init/);
    expect(fs.existsSync(root)).toBe(false);
    Home.init(root);
    expect(Home.open(root, { create: false }).dir).toBe(root);
  });
});
