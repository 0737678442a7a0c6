/**
 * The link's framing, as a pure codec: `u32 length` (of what follows), `u32 envelope
 * length`, the envelope (MessagePack: the request or answer), then an optional raw
 * payload (the rest: a region read back by a reverse resync). Keeping the payload
 * outside the MessagePack means it is never copied to be encoded or decoded, and a frame
 * arriving in many chunks is assembled into one buffer as it comes. Lengths are checked
 * before anything is allocated (E_PROTOCOL); big-endian like the control socket's.
 */
import { Packr } from 'msgpackr';
import { PlexusError } from '../errors.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** One decoded frame. */
export interface PeerFrame {
  envelope: Record<string, unknown>;
  payload?: Buffer;
}

/** The buffers to write for one frame (`max`: the link's frame limit). */
export function encodePeerFrame(envelope: unknown, payload: Buffer | undefined, max: number): Buffer[] {
  const env = packr.pack(envelope);
  const total = 4 + env.length + (payload?.length ?? 0);
  if (total > max) throw new PlexusError('E_INVALID', `peer message of ${total} bytes is larger than the ${max}-byte limit`);
  const head = Buffer.allocUnsafe(8);
  head.writeUInt32BE(total, 0);
  head.writeUInt32BE(env.length, 4);
  return payload && payload.length > 0 ? [head, env, payload] : [head, env];
}

/** Splits a byte stream into frames. */
export class PeerFrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** The frame being assembled, once its length is known. */
  private frame?: { buf: Buffer; filled: number };

  constructor(private max: number) {}

  /** Changes the frame limit from the next frame on (the handshake is over). */
  relimit(max: number): void {
    this.max = max;
  }

  /** Adds bytes from the socket; returns the frames they complete, in order. */
  push(chunk: Buffer): PeerFrame[] {
    const out: PeerFrame[] = [];
    let rest = chunk;
    while (rest.length > 0) {
      if (this.frame) {
        const f = this.frame;
        const n = Math.min(rest.length, f.buf.length - f.filled);
        rest.copy(f.buf, f.filled, 0, n);
        f.filled += n;
        rest = rest.subarray(n);
        if (f.filled === f.buf.length) {
          this.frame = undefined;
          out.push(this.decode(f.buf));
        }
        continue;
      }
      // The length first (it may arrive split).
      this.chunks.push(rest);
      this.buffered += rest.length;
      rest = Buffer.alloc(0);
      if (this.buffered < 4) break;
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      this.chunks = [];
      this.buffered = 0;
      const total = all.readUInt32BE(0);
      if (total > this.max) throw new PlexusError('E_PROTOCOL', `peer frame of ${total} bytes is larger than the ${this.max}-byte limit`);
      if (total < 4) throw new PlexusError('E_PROTOCOL', `peer frame of ${total} bytes is too short for its envelope length`);
      this.frame = { buf: Buffer.allocUnsafe(total), filled: 0 };
      rest = all.subarray(4);
    }
    return out;
  }

  private decode(buf: Buffer): PeerFrame {
    const envLen = buf.readUInt32BE(0);
    if (envLen > buf.length - 4) throw new PlexusError('E_PROTOCOL', `peer frame envelope of ${envLen} bytes does not fit its ${buf.length}-byte frame`);
    let envelope: unknown;
    try {
      envelope = packr.unpack(buf.subarray(4, 4 + envLen));
    } catch (e) {
      throw new PlexusError('E_PROTOCOL', `peer frame envelope is not valid MessagePack: ${(e as Error).message}`, { cause: e });
    }
    if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) throw new PlexusError('E_PROTOCOL', 'peer frame envelope is not a map');
    const payload = buf.length > 4 + envLen ? buf.subarray(4 + envLen) : undefined;
    return { envelope: envelope as Record<string, unknown>, payload };
  }

  /** Bytes received but not yet part of a whole frame. */
  get pending(): number {
    return this.buffered + (this.frame?.filled ?? 0);
  }
}
