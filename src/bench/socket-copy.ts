/**
 * The peer of `bench replicate`: a plain TCP copy between two processes, the bandwidth
 * replication is compared with. `node dist/bench/socket-copy.js sink` listens and prints
 * `listening PORT`, then `received BYTES SECONDS` (first byte to last) for each sender;
 * `node dist/bench/socket-copy.js send HOST:PORT BYTES` writes BYTES in 4 MiB writes.
 */
import net from 'node:net';

const [role, a, b] = process.argv.slice(2);

if (role === 'sink') {
  const server = net.createServer((sock) => {
    let bytes = 0;
    let first = 0n;
    sock.on('data', (d: Buffer) => {
      if (bytes === 0) first = process.hrtime.bigint();
      bytes += d.length;
    });
    sock.on('end', () => {
      process.stdout.write(`received ${bytes} ${Number(process.hrtime.bigint() - first) / 1e9}\n`);
      sock.end();
    });
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as net.AddressInfo).port}\n`));
} else if (role === 'send') {
  const i = a!.lastIndexOf(':');
  const total = Number(b);
  const chunk = Buffer.alloc(4 << 20, 0x5a);
  const sock = net.connect({ host: a!.slice(0, i), port: Number(a!.slice(i + 1)) }, () => {
    let sent = 0;
    const pump = (): void => {
      while (sent < total) {
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        if (!sock.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          sock.once('drain', pump);
          return;
        }
      }
      sock.end();
    };
    pump();
  });
  sock.on('close', () => process.exit(0));
}
