/**
 * The control socket's framing, as a pure codec: each message is a 4-byte big-endian
 * length and that many bytes of MessagePack. Lengths are checked before anything is
 * buffered, so a hostile or broken peer costs at most one bounded frame of memory.
 */
import { Packr } from 'msgpackr';
import { PlexusError } from '../errors.js';

/** The largest frame either side accepts: a data chunk (4 MiB) with room for its envelope. */
export const MAX_FRAME = 8 << 20;

// Plain maps and Buffers in, plain objects and Buffers out; no records extension, so any
// MessagePack implementation could speak the protocol.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** One message as bytes on the socket. */
export function encodeFrame(message: unknown): Buffer {
  const body = packr.pack(message);
  if (body.length > MAX_FRAME) throw new PlexusError('E_INVALID', `control message of ${body.length} bytes is larger than the ${MAX_FRAME}-byte limit`);
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

/** Splits a byte stream into messages; E_PROTOCOL for an oversize frame or bad MessagePack. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** Adds bytes from the socket; returns the messages they complete, in order. */
  push(chunk: Buffer): unknown[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: unknown[] = [];
    for (;;) {
      if (this.buffered < 4) return out;
      if (this.chunks[0]!.length < 4) this.chunks = [Buffer.concat(this.chunks)];
      const len = this.chunks[0]!.readUInt32BE(0);
      if (len > MAX_FRAME) throw new PlexusError('E_PROTOCOL', `control frame of ${len} bytes is larger than the ${MAX_FRAME}-byte limit`);
      // Joined only once the whole frame is here: a large frame arriving in many small
      // chunks is copied once, not once per chunk.
      if (this.buffered < 4 + len) return out;
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      const body = all.subarray(4, 4 + len);
      const rest = all.subarray(4 + len);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      try {
        out.push(packr.unpack(body));
      } catch (e) {
        throw new PlexusError('E_PROTOCOL', `control frame is not valid MessagePack: ${(e as Error).message}`, { cause: e });
      }
    }
  }

  /** Bytes received but not yet part of a whole message. */
  get pending(): number {
    return this.buffered;
  }
}
