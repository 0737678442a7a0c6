import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checksum, KiB, MiB, ok, plexusRaw, sha256, useScratch } from './cli-helpers.js';

const s = useScratch();

describe('plexus volume write/read with --pattern', () => {
  it('writes 4K of 0xab at 1M and reads exactly those bytes back to a file', () => {
    ok(s.home, 'volume', 'create', 'v', '--size', '2M');
    const w = ok(s.home, 'volume', 'write', 'v', '--pattern', '0xab', '--length', '4K', '--offset', '1M');
    expect(w.stdout).toBe(`wrote 4096 bytes to v at offset ${MiB}\n`);
    expect(w.stderr).toBe('');

    const f = path.join(s.dir, 'f');
    const r = ok(s.home, 'volume', 'read', 'v', '--offset', '1M', '--length', '4K', '--to', f);
    expect(r.stdout).toBe('');
    const got = fs.readFileSync(f);
    expect(got.length).toBe(4096);
    expect(got.equals(Buffer.alloc(4096, 0xab))).toBe(true);

    // The bytes around the pattern are still zero.
    const around = path.join(s.dir, 'around');
    ok(s.home, 'volume', 'read', 'v', '--offset', `${MiB - 16}`, '--length', `${4096 + 32}`, '--to', around);
    const a = fs.readFileSync(around);
    expect(a.subarray(0, 16).equals(Buffer.alloc(16))).toBe(true);
    expect(a.subarray(16, 16 + 4096).equals(Buffer.alloc(4096, 0xab))).toBe(true);
    expect(a.subarray(16 + 4096).equals(Buffer.alloc(16))).toBe(true);
  });

  it('accepts a decimal pattern byte and the full 0..255 range', () => {
    ok(s.home, 'volume', 'create', 'v', '--size', '64K');
    ok(s.home, 'volume', 'write', 'v', '--pattern', '0', '--length', '16');
    ok(s.home, 'volume', 'write', 'v', '--pattern', '255', '--length', '16', '--offset', '16');
    ok(s.home, 'volume', 'write', 'v', '--pattern', '0x7F', '--length', '16', '--offset', '32');
    const r = plexusRaw(s.home, 'volume', 'read', 'v', '--length', '48');
    expect(r.code).toBe(0);
    expect(r.stdout.equals(Buffer.concat([Buffer.alloc(16, 0), Buffer.alloc(16, 255), Buffer.alloc(16, 0x7f)]))).toBe(true);
  });

  it('reads a whole fresh (sparse) volume as zeros, with the checksum of zeros', () => {
    ok(s.home, 'volume', 'create', 'z', '--size', '256K');
    const r = plexusRaw(s.home, 'volume', 'read', 'z');
    expect(r.code).toBe(0);
    expect(r.stdout.equals(Buffer.alloc(256 * KiB))).toBe(true);
    expect(checksum(s.home, 'z')).toBe(sha256(Buffer.alloc(256 * KiB)));
  });
});

describe('plexus volume write --from', () => {
  it('round-trips a random file at an offset byte for byte, and the range checksum matches node:crypto', () => {
    ok(s.home, 'volume', 'create', 'v', '--size', '1M');
    const data = crypto.randomBytes(100_000 + 17);
    const src = path.join(s.dir, 'src.bin');
    fs.writeFileSync(src, data);
    const offset = 12_345;

    const w = ok(s.home, 'volume', 'write', 'v', '--offset', String(offset), '--from', src);
    expect(w.stdout).toBe(`wrote ${data.length} bytes to v at offset ${offset}\n`);

    const out = path.join(s.dir, 'out.bin');
    ok(s.home, 'volume', 'read', 'v', '--offset', String(offset), '--length', String(data.length), '--to', out);
    expect(fs.readFileSync(out).equals(data)).toBe(true);

    expect(checksum(s.home, 'v', '--offset', String(offset), '--length', String(data.length))).toBe(sha256(data));

    // And the whole volume: zeros, the data, zeros.
    const whole = Buffer.alloc(MiB);
    data.copy(whole, offset);
    expect(checksum(s.home, 'v')).toBe(sha256(whole));
    const all = path.join(s.dir, 'all.bin');
    ok(s.home, 'volume', 'read', 'v', '--to', all);
    expect(sha256(fs.readFileSync(all))).toBe(sha256(whole));
  });

  it('writes a file that exactly fills the volume up to its end', () => {
    ok(s.home, 'volume', 'create', 'v', '--size', '64K');
    const data = crypto.randomBytes(4096);
    const src = path.join(s.dir, 'tail.bin');
    fs.writeFileSync(src, data);
    ok(s.home, 'volume', 'write', 'v', '--offset', '60K', '--from', src);
    expect(checksum(s.home, 'v', '--offset', '60K')).toBe(sha256(data));
  });

  it('writes an empty file as zero bytes', () => {
    ok(s.home, 'volume', 'create', 'v', '--size', '64K');
    const src = path.join(s.dir, 'empty');
    fs.writeFileSync(src, '');
    expect(ok(s.home, 'volume', 'write', 'v', '--from', src).stdout).toBe('wrote 0 bytes to v at offset 0\n');
    expect(checksum(s.home, 'v')).toBe(sha256(Buffer.alloc(64 * KiB)));
  });
});

describe('plexus volume read to stdout', () => {
  it('prints a small range as raw bytes and nothing on stderr', () => {
    ok(s.home, 'volume', 'create', 'v', '--size', '64K');
    const data = crypto.randomBytes(300);
    const src = path.join(s.dir, 'd');
    fs.writeFileSync(src, data);
    ok(s.home, 'volume', 'write', 'v', '--offset', '1000', '--from', src);
    const r = plexusRaw(s.home, 'volume', 'read', 'v', '--offset', '1100', '--length', '100');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.equals(data.subarray(100, 200))).toBe(true);
  });

  it('reads from an offset to the end when --length is omitted', () => {
    ok(s.home, 'volume', 'create', 'v', '--size', '64K');
    ok(s.home, 'volume', 'write', 'v', '--pattern', '0x5a', '--length', '100', '--offset', `${64 * KiB - 100}`);
    const r = plexusRaw(s.home, 'volume', 'read', 'v', '--offset', `${64 * KiB - 200}`);
    expect(r.code).toBe(0);
    expect(r.stdout.equals(Buffer.concat([Buffer.alloc(100), Buffer.alloc(100, 0x5a)]))).toBe(true);
  });

  it('reads nothing at offset == size', () => {
    ok(s.home, 'volume', 'create', 'v', '--size', '64K');
    const r = plexusRaw(s.home, 'volume', 'read', 'v', '--offset', '64K');
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(0);
  });

  it('streams a multi-MiB read (more than one internal piece) byte-identically to stdout', () => {
    ok(s.home, 'volume', 'create', 'v', '--size', '6M');
    ok(s.home, 'volume', 'write', 'v', '--random', '6M', '--seed', '3');
    const r = plexusRaw(s.home, 'volume', 'read', 'v');
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(6 * MiB);
    expect(sha256(r.stdout)).toBe(checksum(s.home, 'v'));
  });
});

describe('plexus volume write --random', () => {
  it('writes the same bytes for the same seed in two volumes and different bytes for another seed', () => {
    for (const n of ['a', 'b', 'c']) ok(s.home, 'volume', 'create', n, '--size', '256K');
    ok(s.home, 'volume', 'write', 'a', '--random', '256K', '--seed', '42');
    ok(s.home, 'volume', 'write', 'b', '--random', '256K', '--seed', '42');
    ok(s.home, 'volume', 'write', 'c', '--random', '256K', '--seed', '43');
    const a = checksum(s.home, 'a');
    expect(checksum(s.home, 'b')).toBe(a);
    expect(checksum(s.home, 'c')).not.toBe(a);
    expect(a).not.toBe(sha256(Buffer.alloc(256 * KiB)));
  });

  it('is the same as read back, and the default seed is deterministic', () => {
    ok(s.home, 'volume', 'create', 'a', '--size', '64K');
    ok(s.home, 'volume', 'create', 'b', '--size', '64K');
    const w = ok(s.home, 'volume', 'write', 'a', '--random', '8K', '--offset', '4K');
    expect(w.stdout).toBe('wrote 8192 bytes to a at offset 4096\n');
    ok(s.home, 'volume', 'write', 'b', '--random', '8K', '--offset', '4K');
    expect(checksum(s.home, 'a')).toBe(checksum(s.home, 'b'));
    const r = plexusRaw(s.home, 'volume', 'read', 'a');
    expect(sha256(r.stdout)).toBe(checksum(s.home, 'a'));
    // Only the written range changed.
    expect(r.stdout.subarray(0, 4096).equals(Buffer.alloc(4096))).toBe(true);
    expect(r.stdout.subarray(12 * KiB).equals(Buffer.alloc(52 * KiB))).toBe(true);
    expect(r.stdout.subarray(4096, 12 * KiB).equals(Buffer.alloc(8192))).toBe(false);
  });
});

describe('plexus volume checksum', () => {
  it('prints JSON with algorithm sha256 and the range it covered', () => {
    ok(s.home, 'volume', 'create', 'v', '--size', '128K');
    ok(s.home, 'volume', 'write', 'v', '--random', '128K', '--seed', '9');
    const whole = JSON.parse(ok(s.home, 'volume', 'checksum', 'v', '--json').stdout) as Record<string, unknown>;
    expect(whole).toEqual({ volume: 'v', offset: 0, length: 128 * KiB, algorithm: 'sha256', digest: checksum(s.home, 'v') });

    const part = JSON.parse(ok(s.home, 'volume', 'checksum', 'v', '--offset', '4K', '--length', '8K', '--json').stdout) as Record<string, unknown>;
    expect(part).toMatchObject({ volume: 'v', offset: 4096, length: 8192, algorithm: 'sha256' });
    const bytes = plexusRaw(s.home, 'volume', 'read', 'v', '--offset', '4K', '--length', '8K').stdout;
    expect(part.digest).toBe(sha256(bytes));
  });

  it('of an empty range is the sha256 of nothing', () => {
    ok(s.home, 'volume', 'create', 'v', '--size', '64K');
    expect(checksum(s.home, 'v', '--offset', '64K')).toBe(sha256(Buffer.alloc(0)));
    expect(checksum(s.home, 'v', '--offset', '0', '--length', '0')).toBe(sha256(Buffer.alloc(0)));
  });
});
