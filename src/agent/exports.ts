/**
 * The agent's NBD exports: one per volume, named as the volume. A primary or plain
 * volume is served through its write path (`NativePlex`, shared with the library's pair
 * set, so a pair created under a connected client mirrors that client's writes); a
 * pair's secondary by the pair's rules (read-only while mirrored or when split
 * read-only; its access list checked on connection). Exports follow the home: after
 * every change the agent makes, and every few seconds for volumes made behind its back.
 */
import net from 'node:net';
import { callNative, PlexusError } from '../errors.js';
import { hostIdentity } from '../home/home.js';
import { PlexSet } from '../mirror/plexset.js';
import { isDuplexing } from '../mirror/states.js';
import { type NativePlex, native } from '../native/binding.js';
import type { AgentCore, ExportControl } from './core.js';

/** Where NBD listens. */
export interface ExportOptions {
  /** `HOST:PORT`. */
  tcp?: string;
  /** A Unix socket path. */
  unix?: string;
  /** Listen on a non-loopback address without TLS. */
  allowRemote: boolean;
  /** TLS credentials: an x509 directory or a psktool key file (docs/nbd-tls.md). */
  tls?: TlsOptions;
}

/** TLS for NBD clients (NBD_OPT_STARTTLS). */
export interface TlsOptions {
  /** Directory with server-cert.pem, server-key.pem, ca-cert.pem. */
  certificates?: string;
  /** Clients must present a certificate signed by the CA. */
  verifyPeer?: boolean;
  /** A psktool file of `username:hexkey` lines. */
  psk?: string;
  /** `require` (default): clients without TLS are refused; `on`: TLS is offered. */
  mode?: 'require' | 'on';
}

/** One export as `exports.list` reports it. */
export interface ExportInfo {
  name: string;
  kind: 'volume' | 'primary' | 'secondary';
  readOnly: boolean;
  allow: string[];
}

type NbdServer = InstanceType<typeof native.NativeNbdServer>;

/** How often exports are re-read from the home, and events drained. */
const REFRESH_MS = 2000;
const EVENTS_MS = 250;

/** Splits `HOST:PORT` (`[v6]:PORT` too); E_INVALID otherwise. */
export function parseHostPort(spec: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(spec);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new PlexusError('E_INVALID', `NBD address '${spec}' must be HOST:PORT, e.g. 127.0.0.1:10809`);
  return { host: m[1] ?? m[2]!, port };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.'));
}

class Exporter implements ExportControl {
  /** What each export is now, as a key: a change of key re-adds the export. */
  private readonly roles = new Map<string, string>();
  private readonly timers: NodeJS.Timeout[] = [];
  /** Volumes not served for now, with how many pauses hold each. */
  private readonly paused = new Map<string, number>();

  constructor(
    private readonly core: AgentCore,
    private readonly server: NbdServer,
    private readonly unix: string | undefined,
  ) {
    this.timers.push(setInterval(() => this.drain(), EVENTS_MS).unref());
    this.timers.push(
      setInterval(() => {
        try {
          this.refresh();
        } catch (e) {
          this.core.log.event('export-refresh-failed', { error: (e as Error).message });
        }
      }, REFRESH_MS).unref(),
    );
    this.refresh();
  }

  /** The write path of `name`: one per volume for the agent's life. */
  private plexOf(name: string): NativePlex {
    return this.core.writePaths.of(name);
  }

  refresh(): void {
    const store = this.core.mirrors.store;
    const records = this.core.mirrors.records.all();
    const names = new Set(store.names());
    for (const name of names) {
      if (this.paused.has(name)) continue;
      const asSecondary = records.find((r) => r.secondary === name);
      if (asSecondary) {
        const mirror = PlexSet.kept(asSecondary.primary)?.mirrorOf(name);
        if (!mirror) {
          // Its primary's set is not open (a secondary that could not be opened, a
          // set another process holds): not served until it is.
          this.drop(name);
          continue;
        }
        const readOnly = isDuplexing(asSecondary.state) || asSecondary.readOnly;
        const role = `secondary ${asSecondary.primary} ${readOnly} ${asSecondary.allow.join(',')}`;
        if (this.roles.get(name) === role) continue;
        this.switchRole(name, role);
        callNative(() =>
          this.server.addSecondary(name, mirror, readOnly, asSecondary.allow, hostIdentity(), `secondary of ${asSecondary.primary} (${asSecondary.state}${readOnly ? ', read-only' : ''})`),
        );
        continue;
      }
      const role = records.some((r) => r.primary === name) ? 'primary' : 'volume';
      if (this.roles.get(name) === role) continue;
      const plex = this.plexOf(name);
      // volume → primary keeps the connections: the plex gained the mirrors under them.
      const prev = this.roles.get(name);
      if (prev !== undefined && prev !== 'volume' && prev !== 'primary') this.switchRole(name, role);
      else this.roles.set(name, role);
      callNative(() => this.server.addPrimary(name, plex, role === 'primary' ? 'primary volume (writes are mirrored to its pairs)' : 'volume'));
    }
    for (const name of [...this.roles.keys()]) if (!names.has(name)) this.drop(name);
  }

  /** A new role: clients of the old one are cut before the export is replaced. */
  private switchRole(name: string, role: string): void {
    if (this.roles.has(name)) {
      const n = callNative(() => this.server.disconnect(name));
      if (n > 0) this.core.log.event('export-clients-cut', { export: name, clients: n, role });
    }
    this.roles.set(name, role);
  }

  private drop(name: string): void {
    if (!this.roles.has(name)) return;
    callNative(() => this.server.remove(name));
    callNative(() => this.server.disconnect(name));
    this.roles.delete(name);
    this.core.writePaths.forget(name);
  }

  cut(volume: string): void {
    if (!this.roles.has(volume)) return;
    callNative(() => this.server.remove(volume));
    const n = callNative(() => this.server.disconnect(volume));
    if (n > 0) this.core.log.event('export-clients-cut', { export: volume, clients: n });
    this.roles.delete(volume);
  }

  list(): ExportInfo[] {
    const records = this.core.mirrors.records.all();
    return [...this.roles.entries()].map(([name, role]) => {
      const sec = records.find((r) => r.secondary === name);
      const kind = role.startsWith('secondary') ? 'secondary' : (role as 'volume' | 'primary');
      return { name, kind, readOnly: kind === 'secondary' && role.split(' ')[2] === 'true', allow: sec?.allow ?? [] };
    });
  }

  addresses(): { tcp?: string; unix?: string } {
    return { tcp: this.server.tcpAddress ?? undefined, unix: this.unix };
  }

  clients(volume?: string): number {
    return callNative(() => (volume === undefined ? this.server.connections() : this.server.exportConnections(volume)));
  }

  pause(volume: string): () => void {
    this.paused.set(volume, (this.paused.get(volume) ?? 0) + 1);
    this.cut(volume);
    this.core.log.event('export-paused', { export: volume });
    let resumed = false;
    return () => {
      if (resumed) return;
      resumed = true;
      const n = (this.paused.get(volume) ?? 1) - 1;
      if (n > 0) this.paused.set(volume, n);
      else this.paused.delete(volume);
      this.core.log.event('export-resumed', { export: volume });
      this.refresh();
    };
  }

  private drain(): void {
    for (const line of callNative(() => this.server.drainEvents())) this.core.log.raw(line);
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
    callNative(() => this.server.shutdown());
    this.drain();
  }
}

/** Starts serving the home's volumes over NBD. */
export function startExports(core: AgentCore, opts: ExportOptions): ExportControl {
  const tlsRequired = opts.tls !== undefined && opts.tls.mode !== 'on';
  let tcp: string | undefined;
  if (opts.tcp !== undefined) {
    const { host, port } = parseHostPort(opts.tcp);
    if (!isLoopback(host) && !opts.allowRemote && !tlsRequired) {
      throw new PlexusError('E_INVALID', `NBD without TLS listens on loopback only; ${host} is not (give --tls-certificates or --tls-psk, or pass --allow-remote to serve it anyway)`);
    }
    const ip = host === 'localhost' ? '127.0.0.1' : host;
    tcp = net.isIPv6(ip) ? `[${ip}]:${port}` : `${ip}:${port}`;
  }
  const server = callNative(() =>
    native.NativeNbdServer.start({
      tcp,
      unix: opts.unix,
      tlsCertificates: opts.tls?.certificates,
      tlsPsk: opts.tls?.psk,
      tlsVerifyPeer: opts.tls?.verifyPeer,
      tlsRequired: opts.tls ? tlsRequired : undefined,
    }),
  );
  return new Exporter(core, server, opts.unix);
}
