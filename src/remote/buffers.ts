/**
 * A pool of equal large buffers: a shipped batch or a received frame reuses memory
 * whose pages are already faulted in, instead of asking for fresh megabytes per batch
 * (measured: the page faults of a fresh 8 MiB buffer per batch cost the shipper about a
 * third of its time).
 */

/** Buffers of `size` bytes, at most `keep` of them kept when returned. */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly size: number,
    private readonly keep: number,
  ) {}

  /** A buffer of `size` bytes (contents undefined). */
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Gives back a buffer `take` returned, once nothing reads or writes it any more. */
  give(buf: Buffer): void {
    if (buf.length === this.size && this.free.length < this.keep) this.free.push(buf);
  }
}
