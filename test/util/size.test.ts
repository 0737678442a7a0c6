import { describe, expect, it } from 'vitest';
import { formatBytes, parseSize } from '../../src/index.js';

describe('parseSize', () => {
  it('accepts the forms of the CLI contract, in powers of 1024', () => {
    expect(parseSize('512')).toBe(512);
    expect(parseSize('4K')).toBe(4096);
    expect(parseSize('64KiB')).toBe(65536);
    expect(parseSize('1M')).toBe(1 << 20);
    expect(parseSize('2G')).toBe(2 * 2 ** 30);
    expect(parseSize('3mb')).toBe(3 << 20);
    expect(parseSize('7B')).toBe(7);
  });

  it('rejects malformed sizes with E_INVALID naming the text', () => {
    for (const bad of ['', 'abc', '-5', '1.5M', '12Q', '4 K B', '0x10']) {
      expect(() => parseSize(bad)).toThrow(expect.objectContaining({ code: 'E_INVALID', message: expect.stringContaining(`'${bad}'`) }));
    }
    expect(() => parseSize('99999999P')).toThrow(expect.objectContaining({ code: 'E_INVALID' }));
  });

  it('formats bytes with binary units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(1 << 30)).toBe('1.00 GiB');
  });
});
