import { describe, expect, it } from 'vitest';
import { plexus } from '../helpers/home.js';
import { checksum, exists, expectFailure, KiB, listNames, MiB, ok, useScratch, volumeFiles } from './cli-helpers.js';

const s = useScratch();

interface Info {
  name: string;
  id: string;
  size: number;
  blockSize: number;
}

function show(name: string): Info {
  return JSON.parse(ok(s.home, 'volume', 'show', name, '--json').stdout) as Info;
}

/** A 1 MiB source volume with 8K blocks full of seeded random bytes. */
function source(name = 'a', size = '1M', blockSize = '8K'): string {
  ok(s.home, 'volume', 'create', name, '--size', size, '--block-size', blockSize);
  ok(s.home, 'volume', 'write', name, '--random', size, '--seed', '5');
  return checksum(s.home, name);
}

describe('plexus copy', () => {
  it('creates a missing destination with the same size and block size and equal content', () => {
    const sum = source();
    const r = ok(s.home, 'copy', 'a', 'b');
    expect(r.stdout).toMatch(/^copied 1\.00 MiB from a to b in /);
    const a = show('a');
    const b = show('b');
    expect(b.size).toBe(a.size);
    expect(b.blockSize).toBe(8192);
    expect(b.id).not.toBe(a.id);
    expect(checksum(s.home, 'b')).toBe(sum);
    // The source is unchanged.
    expect(checksum(s.home, 'a')).toBe(sum);
  });

  it('overwrites an existing destination of the same size', () => {
    const sum = source();
    ok(s.home, 'volume', 'create', 'b', '--size', '1M', '--block-size', '8K');
    ok(s.home, 'volume', 'write', 'b', '--pattern', '0xee', '--length', '1M');
    const id = show('b').id;
    ok(s.home, 'copy', 'a', 'b');
    expect(checksum(s.home, 'b')).toBe(sum);
    expect(show('b').id).toBe(id);
  });

  it('refuses a destination of a different size with E_SIZE and leaves it untouched', () => {
    source();
    ok(s.home, 'volume', 'create', 'small', '--size', '512K');
    ok(s.home, 'volume', 'write', 'small', '--pattern', '7', '--length', '512K');
    const before = checksum(s.home, 'small');
    expectFailure(plexus(s.home, 'copy', 'a', 'small'), 'E_SIZE');
    expect(checksum(s.home, 'small')).toBe(before);
    expect(show('small').size).toBe(512 * KiB);
  });

  it('works with --threads 1 --chunk 64K and the checksums match', () => {
    const sum = source();
    const r = ok(s.home, 'copy', 'a', 'c', '--threads', '1', '--chunk', '64K', '--json');
    const rep = JSON.parse(r.stdout) as Record<string, number | string>;
    expect(rep.threads).toBe(1);
    expect(rep.chunks).toBe(16);
    expect(rep.bytesCopied).toBe(MiB);
    expect(checksum(s.home, 'c')).toBe(sum);
  });

  it('prints a --json report with bytesCopied equal to the size', () => {
    source('src', '2M', '4K');
    const r = ok(s.home, 'copy', 'src', 'dst', '--json');
    expect(r.stderr).toBe('');
    const rep = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(rep).toMatchObject({ source: 'src', destination: 'dst', bytesCopied: 2 * MiB });
    expect(typeof rep.elapsedMs).toBe('number');
    expect(rep.threads as number).toBeGreaterThanOrEqual(1);
    expect(rep.chunks as number).toBeGreaterThanOrEqual(1);
    expect(rep.rate as number).toBeGreaterThan(0);
    expect(checksum(s.home, 'dst')).toBe(checksum(s.home, 'src'));
  });

  it('works with --no-sync', () => {
    const sum = source();
    ok(s.home, 'copy', 'a', 'b', '--no-sync');
    expect(checksum(s.home, 'b')).toBe(sum);
  });

  it('fails with E_NOENT for a missing source and creates nothing', () => {
    ok(s.home, 'init');
    expectFailure(plexus(s.home, 'copy', 'missing', 'b'), 'E_NOENT', 'missing');
    expect(listNames(s.home)).toEqual([]);
    expect(exists(volumeFiles(s.home, 'b').img)).toBe(false);
  });

  it('refuses to copy a volume onto itself with E_BUSY', () => {
    const sum = source();
    expectFailure(plexus(s.home, 'copy', 'a', 'a'), 'E_BUSY', 'a');
    expect(checksum(s.home, 'a')).toBe(sum);
  });

  it.each(['0', 'abc', '-1', '257', '1.5'])('refuses --threads %s with E_INVALID and does not create the destination', (t) => {
    source();
    expectFailure(plexus(s.home, 'copy', 'a', 'b', '--threads', t), 'E_INVALID', `'${t}'`);
    expect(listNames(s.home)).toEqual(['a']);
    const { img, meta } = volumeFiles(s.home, 'b');
    expect(exists(img) || exists(meta)).toBe(false);
  });

  it('refuses a malformed --chunk with E_INVALID and does not create the destination', () => {
    source();
    expectFailure(plexus(s.home, 'copy', 'a', 'b', '--chunk', 'xyz'), 'E_INVALID', "'xyz'");
    expect(listNames(s.home)).toEqual(['a']);
  });

  it('refuses an invalid destination name with E_INVALID', () => {
    source();
    expectFailure(plexus(s.home, 'copy', 'a', '../b'), 'E_INVALID', '../b');
    expect(listNames(s.home)).toEqual(['a']);
  });

  it('shows no progress bar when stdout and stderr are pipes', () => {
    source('big', '4M', '4K');
    const r = ok(s.home, 'copy', 'big', 'copy1', '--chunk', '64K', '--threads', '1');
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    const j = ok(s.home, 'copy', 'big', 'copy2', '--json');
    expect(j.stderr).toBe('');
    expect(() => JSON.parse(j.stdout)).not.toThrow();
  });
});
