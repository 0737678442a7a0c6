/**
 * Real NBD clients against a running agent: qemu-io, qemu-img, nbdinfo and nbdcopy
 * (Debian's qemu-utils and libnbd-bin, installed by the project's set-up). Writes over
 * NBD take the library's write path: duplexed in PAIR, tracked while split (readable as
 * qemu:dirty-bitmap), zeroes and trims reach the secondary, checkpoints split the record.
 */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { expectFailure, MiB, ok, useScratch } from '../cli/cli-helpers.js';
import { plexus } from '../helpers/home.js';
import { type AgentChild, killAgent, startAgent, stopAgent, waitForJobs } from './agent-helpers.js';

const s = useScratch();
let agents: AgentChild[] = [];

afterEach(async () => {
  for (const a of agents) if (a.child.exitCode === null && a.child.signalCode === null) await killAgent(a);
  agents = [];
});

/** Runs a client tool; fails the test naming the Debian package when it is missing. */
function tool(cmd: string, args: string[], pkg: string, env: NodeJS.ProcessEnv = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20, timeout: 120_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${cmd} is not installed: install Debian's ${pkg} (npm install does, as root)`);
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
const qemuIo = (uri: string, ...cmds: string[]) => tool('qemu-io', ['-f', 'raw', uri, ...cmds.flatMap((c) => ['-c', c])], 'qemu-utils');
/** qemu-io opening the export read-only (it refuses to open a read-only export for writing). */
const qemuIoRead = (uri: string, ...cmds: string[]) => tool('qemu-io', ['-r', '-f', 'raw', uri, ...cmds.flatMap((c) => ['-c', c])], 'qemu-utils');
const nbdinfo = (...args: string[]) => tool('nbdinfo', args, 'libnbd-bin');

/**
 * An interactive qemu-io session: one NBD connection for its whole life. `run` sends a
 * command and returns what qemu-io printed once `until` matches (or after 10 s).
 */
function qemuSession(target: string): { run(cmd: string, until: RegExp): Promise<string>; close(): void } {
  const child = spawn('qemu-io', ['-f', 'raw', target], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return {
    async run(cmd: string, until: RegExp): Promise<string> {
      const from = out.length;
      child.stdin.write(`${cmd}\n`);
      const deadline = Date.now() + 10_000;
      while (!until.test(out.slice(from)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      return out.slice(from);
    },
    close: () => void child.kill('SIGKILL'),
  };
}

function sock(): string {
  return path.join(s.dir, 'nbd.sock');
}
function uri(name: string): string {
  return `nbd+unix:///${name}?socket=${sock()}`;
}
async function serve(...args: string[]): Promise<AgentChild> {
  const a = await startAgent(s.home, '--nbd-socket', sock(), ...args);
  agents.push(a);
  return a;
}
const digest = (name: string): string => ok(s.home, 'volume', 'checksum', name).stdout.trim();
const fileDigest = (f: string): string => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/** Dirty (or data) extents from `nbdinfo --map`: [offset, length, type] with type non-zero. */
function mapOf(context: string, name: string): Array<[number, number]> {
  const r = nbdinfo('--json', `--map=${context}`, uri(name));
  expect(r.code, r.stderr).toBe(0);
  const extents = JSON.parse(r.stdout) as Array<{ offset: number; length: number; type: number }>;
  return extents.filter((e) => e.type !== 0).map((e) => [e.offset, e.length]);
}

function paired(size = '16M'): void {
  ok(s.home, 'init');
  ok(s.home, 'volume', 'create', 'p', '--size', size);
  ok(s.home, 'volume', 'create', 's', '--size', size);
  ok(s.home, 'pair', 'create', 'p', 's');
}

describe('NBD exports of the agent', () => {
  it('lists one export per volume, with multi-conn, flush, FUA, trim and zeroes offered', async () => {
    paired();
    ok(s.home, 'volume', 'create', 'plain', '--size', '4M');
    await serve();
    const list = nbdinfo('--list', '--json', `nbd+unix://?socket=${sock()}`);
    expect(list.code, list.stderr).toBe(0);
    const exports = JSON.parse(list.stdout).exports as Array<Record<string, unknown>>;
    expect(exports.map((e) => e['export-name']).sort()).toEqual(['p', 'plain', 's']);
    const p = exports.find((e) => e['export-name'] === 'p')!;
    expect(p['export-size']).toBe(16 * MiB);
    for (const flag of ['can_multi_conn', 'can_flush', 'can_fua', 'can_trim', 'can_zero', 'can_cache', 'can_df', 'can_fast_zero']) expect(p[flag], flag).toBe(true);
    expect(p.is_read_only).toBe(false);
    // The secondary of a pair in PAIR is served read-only: the mirror owns its writes.
    expect(exports.find((e) => e['export-name'] === 's')!.is_read_only).toBe(true);
    expect(p.contexts).toEqual(expect.arrayContaining(['base:allocation', 'qemu:dirty-bitmap:s']));
  });

  it("answers every command as the protocol says, driven by libnbd's nbdsh: FUA write, read, CACHE, FLUSH, TRIM, WRITE_ZEROES, BLOCK_STATUS, DISC; EPERM on a read-only export", async () => {
    paired('8M');
    ok(s.home, 'volume', 'create', 'r', '--size', '8M');
    ok(s.home, 'volume', 'create', 'rs', '--size', '8M');
    ok(s.home, 'pair', 'create', 'r', 'rs');
    ok(s.home, 'pair', 'split', 'r', '--read-only');
    await serve();
    const script = `
h.add_meta_context("base:allocation")
h.connect_uri(${JSON.stringify(uri('p'))})
assert h.can_fua() and h.can_cache() and h.can_flush() and h.can_trim() and h.can_zero() and h.can_multi_conn()
h.pwrite(b"\\xab" * 65536, 0, nbd.CMD_FLAG_FUA)
assert h.pread(65536, 0) == b"\\xab" * 65536
h.cache(65536, 0)
h.flush()
h.trim(65536, 0)
h.zero(65536, 131072)
assert h.pread(65536, 0) == bytes(65536)
seen = []
h.block_status(8 << 20, 0, lambda ctx, off, ents, err: seen.append((ctx, list(ents))))
assert seen and seen[0][0] == "base:allocation", seen
h.pwrite(b"\\x07" * 4096, 4096)
h.shutdown()
ro = nbd.NBD()
ro.set_strict_mode(0)
ro.connect_uri(${JSON.stringify(uri('rs'))})
assert ro.is_read_only()
try:
    ro.pwrite(b"x" * 512, 0)
    raise SystemExit("a write to a read-only export was accepted")
except nbd.Error as e:
    assert "(EPERM)" in str(e), e
print("all commands answered")
`;
    // nbdsh runs `python3` from PATH: Debian's, which has the nbd module (not another
    // Python installed ahead of it).
    const r = tool('nbdsh', ['-c', script], 'python3-libnbd', { PATH: `/usr/bin:${process.env.PATH ?? ''}` });
    expect(r.stdout + r.stderr).toContain('all commands answered');
    expect(r.code, r.stderr).toBe(0);
    // The trim and the zeroes reached the secondary; the last write too.
    expect(digest('p')).toBe(digest('s'));
  });

  it('duplexes qemu-io writes, zeroes and discards on a PAIR primary to its secondary', async () => {
    paired();
    await serve();
    const w = qemuIo(uri('p'), 'write -P 0xab 0 1M', 'write -P 0xcd 3M 64k', 'aio_write -P 0x11 5M 128k', 'aio_flush', 'flush', 'write -z 512k 64k', 'discard 3M 32k');
    expect(w.code, w.stderr).toBe(0);
    const r = qemuIo(uri('p'), 'read -P 0xab 0 512k', 'read -P 0 512k 64k', 'read -P 0xab 576k 448k', 'read -P 0 3M 32k', 'read -P 0xcd 3104k 32k', 'read -P 0x11 5M 128k');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).not.toContain('Pattern verification failed');
    expect(digest('p')).toBe(digest('s'));
    // qemu-img reads the export and compares it with the volume's raw data file.
    const cmp = tool('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', uri('p'), path.join(s.home, 'volumes', 's.img')], 'qemu-utils');
    expect(cmp.code, cmp.stdout + cmp.stderr).toBe(0);
  });

  it('copies whole exports with nbdcopy over several connections, both ways, byte for byte', async () => {
    paired('32M');
    await serve();
    const src = path.join(s.dir, 'src.raw');
    fs.writeFileSync(src, crypto.randomBytes(32 * MiB));
    const up = tool('nbdcopy', ['--connections=4', '--requests=16', src, uri('p')], 'libnbd-bin');
    expect(up.code, up.stderr).toBe(0);
    expect(digest('p')).toBe(fileDigest(src));
    expect(digest('s')).toBe(fileDigest(src));
    const back = path.join(s.dir, 'back.raw');
    const down = tool('nbdcopy', ['--connections=4', uri('p'), back], 'libnbd-bin');
    expect(down.code, down.stderr).toBe(0);
    expect(fileDigest(back)).toBe(fileDigest(src));
  });

  it('a split primary records NBD writes in its dirty bitmap: nbdinfo --map names exactly the regions written', async () => {
    paired('16M');
    await serve();
    ok(s.home, 'pair', 'split', 'p');
    // 64 KiB granules: a write inside one granule marks that granule only.
    expect(qemuIo(uri('p'), 'write -P 1 0 4k', 'write -P 2 1M 128k', 'write -P 3 10000k 8k').code).toBe(0);
    expect(mapOf('qemu:dirty-bitmap:s', 'p')).toEqual([
      [0, 64 * 1024],
      [1 * MiB, 128 * 1024],
      [9984 * 1024, 64 * 1024],
    ]);
    // The secondary was not written: its bitmap is clean, its data the split image.
    expect(mapOf('qemu:dirty-bitmap:s', 's')).toEqual([]);
    const [pair] = JSON.parse(ok(s.home, 'pair', 'display', 'p', '--json').stdout);
    expect(pair.dirtyBytes).toBe(256 * 1024);
    ok(s.home, 'pair', 'resync', 'p');
    expect(digest('p')).toBe(digest('s'));
  });

  it('pair checkpoint starts a new bitmap generation; the old one stays readable until released', async () => {
    paired('16M');
    await serve();
    const first = JSON.parse(ok(s.home, 'pair', 'checkpoint', 'p', '--json').stdout);
    expect(first.generation).toBe(1);
    expect(qemuIo(uri('p'), 'write -P 7 2M 64k').code).toBe(0);
    const second = JSON.parse(ok(s.home, 'pair', 'checkpoint', 'p', '--json').stdout);
    expect(second.generation).toBe(2);
    expect(qemuIo(uri('p'), 'write -P 8 6M 64k', 'write -P 9 2M 4k').code).toBe(0);
    expect(mapOf('qemu:dirty-bitmap:checkpoint-1', 'p')).toEqual([[2 * MiB, 64 * 1024]]);
    expect(mapOf('qemu:dirty-bitmap:checkpoint-2', 'p')).toEqual([
      [2 * MiB, 64 * 1024],
      [6 * MiB, 64 * 1024],
    ]);
    // Writes through the CLI are recorded too (same write path as NBD clients).
    ok(s.home, 'volume', 'write', 'p', '--pattern', '1', '--length', '4K', '--offset', '12M');
    expect(mapOf('qemu:dirty-bitmap:checkpoint-2', 'p')).toContainEqual([12 * MiB, 64 * 1024]);
    ok(s.home, 'pair', 'checkpoint', 'p', '--release', '1');
    const r = nbdinfo('--json', '--map=qemu:dirty-bitmap:checkpoint-1', uri('p'));
    expect(r.code).not.toBe(0);
    expectFailure(plexus(s.home, 'pair', 'checkpoint', 'p', '--release', '2'), 'E_STATE');
  });

  it('serves a read-only split secondary read-only (EPERM on write) and enforces its access list on connection', async () => {
    paired('8M');
    const a = await serve();
    ok(s.home, 'volume', 'write', 'p', '--pattern', '0x42', '--length', '1M');
    ok(s.home, 'pair', 'split', 'p', '--read-only');
    const w = qemuIo(uri('s'), 'write -P 1 0 4k');
    expect(w.code).not.toBe(0);
    // qemu-io asks for a writable export and is refused at open: the export is read-only.
    expect(w.stdout + w.stderr).toMatch(/Permission denied|Operation not permitted|read-only/i);
    expect(qemuIoRead(uri('s'), 'read -P 0x42 0 1M').code).toBe(0);
    ok(s.home, 'pair', 'resync', 'p');
    ok(s.home, 'pair', 'split', 'p', '--allow', 'backup-host');
    // libnbd prints the server's reason for a refusal in its debug output.
    const refused = tool('nbdinfo', [uri('s')], 'libnbd-bin', { LIBNBD_DEBUG: '1' });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('server error message: host');
    expect(refused.stderr).toContain('is not on the access list (backup-host)');
    // The agent stayed up and serves other clients.
    expect(a.child.exitCode).toBeNull();
    expect(qemuIo(uri('p'), 'read -P 0x42 0 4k').code).toBe(0);
    // The refusal is in the agent's log, with the reason.
    await new Promise((r) => setTimeout(r, 400));
    expect(a.log().some((l) => JSON.stringify(l).includes('not on the access list'))).toBe(true);
    expect(await stopAgent(a)).toBe(0);
  });

  it('kill -9 during NBD writes loses nothing acknowledged; the next agent repairs the mirror', async () => {
    paired('64M');
    const a = await serve();
    // Acknowledged before the kill, in a range the interrupted copy does not touch.
    expect(qemuIo(uri('p'), 'write -P 0x5a 56M 8M').code).toBe(0);
    const acked = crypto
      .createHash('sha256')
      .update(Buffer.alloc(8 * MiB, 0x5a))
      .digest('hex');
    const big = path.join(s.dir, 'big.raw');
    fs.writeFileSync(big, crypto.randomBytes(48 * MiB));
    const writer = spawn('nbdcopy', ['--connections=2', big, uri('p')], { stdio: 'ignore' });
    // Killed once the copy is under way: some of its writes are in (their write-intent
    // bits set), others in flight.
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !(JSON.parse(ok(s.home, 'pair', 'display', 'p', '--json').stdout)[0].dirtyBytes > 0)) await new Promise((r) => setTimeout(r, 10));
    await killAgent(a);
    if (writer.exitCode === null && writer.signalCode === null) await new Promise((r) => writer.once('exit', r));
    await serve();
    // Killed during mirrored writes: the write-intent bits name what to repair, and the
    // next agent resyncs them as a job.
    await waitForJobs(s.home, (js) => js.some((j) => j.kind === 'resync' && j.state === 'done'), 60_000);
    const [pair] = JSON.parse(ok(s.home, 'pair', 'display', 'p', '--json').stdout);
    expect(pair.state).toBe('PAIR');
    expect(digest('p')).toBe(digest('s'));
    expect(ok(s.home, 'volume', 'checksum', 'p', '--offset', '56M', '--length', '8M').stdout.trim()).toBe(acked);
  });

  it('survives hostile and vanishing clients: a killed nbdcopy, garbage, many connections', async () => {
    paired('32M');
    const a = await serve();
    const big = path.join(s.dir, 'big.raw');
    fs.writeFileSync(big, crypto.randomBytes(32 * MiB));
    const writer = spawn('nbdcopy', ['--connections=4', big, uri('p')], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 100));
    writer.kill('SIGKILL');
    if (writer.exitCode === null && writer.signalCode === null) await new Promise((r) => writer.once('exit', r));
    const net = await import('node:net');
    const conns = await Promise.all(
      Array.from(
        { length: 200 },
        () =>
          new Promise<import('node:net').Socket>((resolve) => {
            const c = net.connect(sock());
            c.on('error', () => undefined);
            c.once('connect', () => {
              c.write(Buffer.from('GET / HTTP/1.0\r\n\r\n'));
              resolve(c);
            });
            c.once('close', () => resolve(c));
          }),
      ),
    );
    for (const c of conns) c.destroy();
    expect(a.child.exitCode).toBeNull();
    expect(qemuIo(uri('p'), 'write -P 3 0 64k', 'read -P 3 0 64k').code).toBe(0);
    expect(digest('p')).toBe(digest('s'));
  });
});

describe('NBD clients across role changes', () => {
  it('a client of a volume that becomes a secondary is disconnected; one of a volume that becomes a primary keeps writing, now mirrored', async () => {
    ok(s.home, 'init');
    for (const v of ['a', 'b', 'c']) ok(s.home, 'volume', 'create', v, '--size', '8M');
    await serve();
    const onA = qemuSession(uri('a'));
    const onB = qemuSession(uri('b'));
    try {
      expect(await onA.run('write -P 0x61 0 64k', /wrote|error/i)).toMatch(/wrote 65536/);
      expect(await onB.run('write -P 0x62 0 64k', /wrote|error/i)).toMatch(/wrote 65536/);
      expect(JSON.parse(ok(s.home, 'serve', '--status', '--json').stdout).nbd.clients).toBe(2);
      // b becomes the secondary of a: its client must not write behind the mirror.
      ok(s.home, 'pair', 'create', 'a', 'b');
      const cut = await onB.run('write -P 0x63 0 64k', /wrote|error|failed/i);
      expect(cut).toMatch(/error|failed/i);
      expect(cut).not.toMatch(/wrote 65536/);
      // a's client stays connected and its writes now reach b through the mirror.
      expect(await onA.run('write -P 0x64 64k 64k', /wrote|error/i)).toMatch(/wrote 65536/);
      expect(digest('a')).toBe(digest('b'));
      expect(qemuIoRead(uri('b'), 'read -P 0x61 0 64k', 'read -P 0x64 64k 64k').code).toBe(0);
    } finally {
      onA.close();
      onB.close();
    }
  });
});

describe('NBD exports of damaged volumes', () => {
  it('a volume file truncated under its export answers EIO past the cut; the agent and other clients carry on', async () => {
    ok(s.home, 'init');
    ok(s.home, 'volume', 'create', 'v', '--size', '8M');
    ok(s.home, 'volume', 'create', 'w', '--size', '8M');
    const a = await serve();
    expect(qemuIo(uri('v'), 'write -P 9 0 8M').code).toBe(0);
    fs.truncateSync(path.join(s.home, 'volumes', 'v.img'), 1 << 20);
    const r = qemuIoRead(uri('v'), 'read -P 9 0 512k', 'read -P 9 4M 64k');
    expect(r.stdout + r.stderr).toMatch(/read 524288\/524288/);
    expect(r.stdout + r.stderr).toMatch(/Input\/output error/);
    expect(a.child.exitCode).toBeNull();
    expect(qemuIo(uri('w'), 'write -P 1 0 64k', 'read -P 1 0 64k').code).toBe(0);
    await new Promise((res) => setTimeout(res, 400));
    expect(a.log().some((l) => l.event === 'nbd-io_error' && String(l.detail).includes('E_CORRUPT'))).toBe(true);
  });
});

describe('NBD multi-conn', () => {
  it('a FLUSH on one connection makes what another connection wrote durable: the agent fdatasyncs the volume files (strace)', async () => {
    paired('8M');
    const a = await serve();
    const first = qemuSession(uri('p'));
    const second = qemuSession(uri('p'));
    try {
      expect(await first.run('write -P 0x77 1M 64k', /wrote|error/i)).toMatch(/wrote 65536/);
      const trace = path.join(s.dir, 'strace.txt');
      const strace = spawn('strace', ['-f', '-y', '-e', 'trace=fsync,fdatasync', '-o', trace, '-p', String(a.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
      let attached = '';
      strace.stderr.on('data', (d) => (attached += d));
      const deadline = Date.now() + 10_000;
      while (!/attached/.test(attached) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300));
      // The flush goes over the other connection.
      const p = /f(data)?sync\(\d+<[^>]*volumes\/p\.img>\) = 0/;
      const sec = /f(data)?sync\(\d+<[^>]*volumes\/s\.img>\) = 0/;
      await second.run('flush', /qemu-io>/);
      const until = Date.now() + 10_000;
      const seen = (): string => (fs.existsSync(trace) ? fs.readFileSync(trace, 'utf8') : '');
      while (!(p.test(seen()) && sec.test(seen())) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      strace.kill('SIGINT');
      await new Promise((r) => strace.once('exit', r));
      const synced = seen();
      expect(synced).toMatch(p);
      expect(synced).toMatch(sec);
      // And the second connection reads what the first wrote.
      expect(await second.run('read -P 0x77 1M 64k', /read \d+|fail/i)).toMatch(/read 65536/);
    } finally {
      first.close();
      second.close();
    }
  });
});

describe('NBD over TLS', () => {
  it('with a pre-shared key: libnbd clients with the key get in (nbdcopy byte for byte), clients without TLS are refused', async () => {
    paired('8M');
    const keys = path.join(s.dir, 'keys.psk');
    const made = tool('psktool', ['-u', 'alice', '-p', keys], 'gnutls-bin');
    expect(made.code, made.stderr).toBe(0);
    await serve('--nbd', '127.0.0.1:0', '--tls-psk', keys);
    const status = JSON.parse(ok(s.home, 'serve', '--status', '--json').stdout);
    const addr = status.nbd.tcp as string;
    expect(addr).toMatch(/^127\.0\.0\.1:\d+$/);
    const src = path.join(s.dir, 'src.raw');
    fs.writeFileSync(src, crypto.randomBytes(8 * MiB));
    const tlsUri = `nbds://alice@${addr}/p?tls-psk-file=${keys}`;
    const up = tool('nbdcopy', [src, tlsUri], 'libnbd-bin');
    expect(up.code, up.stderr).toBe(0);
    expect(digest('p')).toBe(fileDigest(src));
    expect(digest('s')).toBe(fileDigest(src));
    const info = nbdinfo('--json', tlsUri);
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout).TLS).toBe(true);
    // Without TLS: refused (TLS required); with a wrong identity: refused.
    expect(nbdinfo(`nbd://${addr}/p`).code).not.toBe(0);
    const other = path.join(s.dir, 'other.psk');
    tool('psktool', ['-u', 'mallory', '-p', other], 'gnutls-bin');
    expect(nbdinfo(`nbds://mallory@${addr}/p?tls-psk-file=${other}`).code).not.toBe(0);
  });

  it('with x509 certificates: a client trusting the CA copies byte for byte; one trusting another CA is refused', async () => {
    paired('8M');
    // A throw-away PKI (docs/nbd-tls.md): a CA, a server certificate for localhost.
    const pki = path.join(s.dir, 'pki');
    fs.mkdirSync(pki);
    const cert = (...args: string[]) => expect(tool('certtool', args, 'gnutls-bin', {}).code).toBe(0);
    const at = (f: string) => path.join(pki, f);
    fs.writeFileSync(at('ca.info'), 'cn = test CA\nca\ncert_signing_key\nexpiration_days = 2\n');
    fs.writeFileSync(at('server.info'), 'cn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 2\n');
    fs.writeFileSync(at('other.info'), 'cn = other CA\nca\ncert_signing_key\nexpiration_days = 2\n');
    for (const k of ['ca-key.pem', 'server-key.pem', 'other-key.pem']) cert('--generate-privkey', '--outfile', at(k));
    cert('--generate-self-signed', '--load-privkey', at('ca-key.pem'), '--template', at('ca.info'), '--outfile', at('ca-cert.pem'));
    cert('--generate-self-signed', '--load-privkey', at('other-key.pem'), '--template', at('other.info'), '--outfile', at('other-cert.pem'));
    cert(
      '--generate-certificate',
      '--load-ca-certificate',
      at('ca-cert.pem'),
      '--load-ca-privkey',
      at('ca-key.pem'),
      '--load-privkey',
      at('server-key.pem'),
      '--template',
      at('server.info'),
      '--outfile',
      at('server-cert.pem'),
    );
    const server = path.join(s.dir, 'server-creds');
    const client = path.join(s.dir, 'client-creds');
    const stranger = path.join(s.dir, 'stranger-creds');
    for (const d of [server, client, stranger]) fs.mkdirSync(d);
    for (const f of ['server-cert.pem', 'server-key.pem', 'ca-cert.pem']) fs.copyFileSync(at(f), path.join(server, f));
    fs.copyFileSync(at('ca-cert.pem'), path.join(client, 'ca-cert.pem'));
    fs.copyFileSync(at('other-cert.pem'), path.join(stranger, 'ca-cert.pem'));
    await serve('--nbd', '127.0.0.1:0', '--tls-certificates', server);
    const port = (JSON.parse(ok(s.home, 'serve', '--status', '--json').stdout).nbd.tcp as string).split(':')[1];
    const src = path.join(s.dir, 'src.raw');
    fs.writeFileSync(src, crypto.randomBytes(8 * MiB));
    const up = tool('nbdcopy', [src, `nbds://localhost:${port}/p?tls-certificates=${client}`], 'libnbd-bin');
    expect(up.code, up.stderr).toBe(0);
    expect(digest('p')).toBe(fileDigest(src));
    expect(digest('s')).toBe(fileDigest(src));
    expect(nbdinfo(`nbds://localhost:${port}/p?tls-certificates=${stranger}`).code).not.toBe(0);
    expect(nbdinfo(`nbd://localhost:${port}/p`).code).not.toBe(0);
  });

  it('refuses to listen beyond loopback without TLS unless told to', async () => {
    ok(s.home, 'init');
    expectFailure(plexus(s.home, 'serve', '--nbd', '0.0.0.0:0'), 'E_INVALID', 'loopback only');
  });
});
