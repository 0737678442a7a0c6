/**
 * The peer handshake, as a pure state machine (messages in, messages out, no I/O): a
 * versioned hello, then mutual challenge-response over the shared key (HMAC-SHA256 of
 * both nonces, one proof per direction), so neither side accepts a peer that does not
 * hold the key and the key never crosses the link. Each side sends a fresh nonce, so
 * a recorded handshake cannot be replayed. Wire form: docs/replication.md.
 */
import crypto from 'node:crypto';
import { PlexusError } from '../errors.js';

/** Names the protocol in the hello. */
export const PROTOCOL = 'plexus-peer';
/** Versions this build speaks (the highest both sides share is used). */
export const VERSIONS: readonly number[] = [1];
const NONCE_BYTES = 32;

/** What a finished handshake tells its side. */
export interface PeerIdentity {
  /** The other side's site name (its home directory, or --site). */
  site: string;
  version: number;
}

/** A step: a message to send, and/or the end (ready or refused). */
export interface HandshakeStep {
  send?: Record<string, unknown>;
  ready?: PeerIdentity;
  refused?: PlexusError;
}

function proof(key: Buffer, role: 'client' | 'server', version: number, first: Buffer, second: Buffer): Buffer {
  return crypto.createHmac('sha256', key).update(`${PROTOCOL}/${version} ${role}\0`).update(first).update(second).digest();
}

function nonceOf(v: unknown): Buffer | undefined {
  return Buffer.isBuffer(v) || v instanceof Uint8Array ? (Buffer.from(v as Uint8Array).length === NONCE_BYTES ? Buffer.from(v as Uint8Array) : undefined) : undefined;
}

function same(a: unknown, b: Buffer): boolean {
  if (!(Buffer.isBuffer(a) || a instanceof Uint8Array)) return false;
  const x = Buffer.from(a as Uint8Array);
  return x.length === b.length && crypto.timingSafeEqual(x, b);
}

/** A hostile field, named safely: `String()` throws on `{ toString: 0 }`, which MessagePack can carry. */
function kindOf(v: unknown): string {
  return typeof v === 'string' ? v.slice(0, 64) : typeof v;
}

function siteOf(v: unknown): string {
  return typeof v === 'string' && v.length > 0 && v.length <= 256 ? v : '?';
}

/** The side that connects. */
export class HandshakeClient {
  private readonly nonce: Buffer;
  private state: 'hello' | 'challenge' | 'auth' | 'done' = 'hello';
  private version = 0;
  private serverSite = '?';

  constructor(
    private readonly key: Buffer,
    private readonly site: string,
    nonce?: Buffer,
  ) {
    this.nonce = nonce ?? crypto.randomBytes(NONCE_BYTES);
  }

  /** The first message. */
  start(): HandshakeStep {
    this.state = 'challenge';
    return { send: { t: 'hello', proto: PROTOCOL, versions: [...VERSIONS], site: this.site, nonce: this.nonce } };
  }

  /** The server's next message. */
  receive(m: Record<string, unknown>): HandshakeStep {
    if (m.t === 'refused') {
      this.state = 'done';
      return { refused: new PlexusError('E_AUTH', `the remote site refused the link: ${typeof m.reason === 'string' ? m.reason : 'no reason given'}`) };
    }
    if (this.state === 'challenge' && m.t === 'challenge') {
      const version = typeof m.version === 'number' && VERSIONS.includes(m.version) ? m.version : 0;
      const serverNonce = nonceOf(m.nonce);
      if (!version || !serverNonce) return this.fail('E_PROTOCOL', 'the remote site answered the hello with a malformed challenge');
      // The server proves it holds the key before this side proves anything.
      if (!same(m.proof, proof(this.key, 'server', version, this.nonce, serverNonce))) {
        return this.fail('E_AUTH', `the remote site ${siteOf(m.site)} does not hold this site's peer key (import the same key at both sites: plexus remote key --import)`);
      }
      this.version = version;
      this.serverSite = siteOf(m.site);
      this.state = 'auth';
      return { send: { t: 'auth', proof: proof(this.key, 'client', version, serverNonce, this.nonce) } };
    }
    if (this.state === 'auth' && m.t === 'ready') {
      this.state = 'done';
      return { ready: { site: this.serverSite, version: this.version } };
    }
    return this.fail('E_PROTOCOL', `unexpected '${kindOf(m.t)}' from the remote site during the handshake`);
  }

  private fail(code: string, message: string): HandshakeStep {
    this.state = 'done';
    return { refused: new PlexusError(code, message) };
  }
}

/** The side that listens. */
export class HandshakeServer {
  private readonly nonce: Buffer;
  private state: 'hello' | 'auth' | 'done' = 'hello';
  private clientNonce?: Buffer;
  private clientSite = '?';
  private version = 0;

  constructor(
    private readonly key: Buffer,
    private readonly site: string,
    nonce?: Buffer,
  ) {
    this.nonce = nonce ?? crypto.randomBytes(NONCE_BYTES);
  }

  /** The client's next message. A refusal carries the message to send before closing. */
  receive(m: Record<string, unknown>): HandshakeStep {
    if (this.state === 'hello' && m.t === 'hello') {
      if (m.proto !== PROTOCOL) return this.refuse('E_PROTOCOL', `not a ${PROTOCOL} hello`);
      const offered = Array.isArray(m.versions) ? m.versions.filter((v): v is number => typeof v === 'number') : [];
      // No spread: a long offer would overflow the call stack.
      const version = offered.reduce((best, v) => (VERSIONS.includes(v) && v > best ? v : best), 0);
      // Bounded: the refusal must fit in a handshake frame whatever the peer offered.
      const shown = offered.length > 8 ? `${offered.slice(0, 8).join(', ')}, ...` : offered.join(', ');
      if (!version) return this.refuse('E_PROTOCOL', `no common protocol version (peer offers ${shown || 'none'}, this site speaks ${VERSIONS.join(', ')})`);
      const nonce = nonceOf(m.nonce);
      if (!nonce) return this.refuse('E_PROTOCOL', 'malformed hello (nonce)');
      this.clientNonce = nonce;
      this.clientSite = siteOf(m.site);
      this.version = version;
      this.state = 'auth';
      return { send: { t: 'challenge', version, site: this.site, nonce: this.nonce, proof: proof(this.key, 'server', version, nonce, this.nonce) } };
    }
    if (this.state === 'auth' && m.t === 'auth' && this.clientNonce) {
      if (!same(m.proof, proof(this.key, 'client', this.version, this.nonce, this.clientNonce))) {
        return this.refuse('E_AUTH', `peer ${this.clientSite} does not hold this site's key`);
      }
      this.state = 'done';
      return { send: { t: 'ready' }, ready: { site: this.clientSite, version: this.version } };
    }
    return this.refuse('E_PROTOCOL', `unexpected '${kindOf(m.t)}' during the handshake`);
  }

  private refuse(code: string, reason: string): HandshakeStep {
    this.state = 'done';
    return { send: { t: 'refused', reason }, refused: new PlexusError(code, reason) };
  }
}
