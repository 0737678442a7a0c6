/**
 * A TCP proxy that delays every byte by a fixed time in each direction: a long link for
 * benchmarks and tests on a kernel without netem (this machine's has none:
 * CONFIG_NET_SCH_NETEM is not set). Bytes keep their order; bandwidth is whatever
 * loopback gives, so a sender that waits a round trip per message is slowed exactly as
 * on a long fat network, and one that keeps a window in flight is not.
 */
import net from 'node:net';

/** A running proxy. */
export interface DelayProxy {
  /** `127.0.0.1:PORT` to connect to instead of the target. */
  address: string;
  /** Connections now open. */
  connections(): number;
  close(): Promise<void>;
}

function delayed(from: net.Socket, to: net.Socket, ms: number): void {
  const queue: Array<{ at: number; chunk: Buffer }> = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    const now = Date.now();
    while (queue.length > 0 && queue[0]!.at <= now) {
      const { chunk } = queue.shift()!;
      if (!to.destroyed) to.write(chunk);
    }
    if (queue.length > 0) {
      scheduled = true;
      setTimeout(flush, Math.max(0, queue[0]!.at - Date.now()));
    }
  };
  from.on('data', (chunk: Buffer) => {
    queue.push({ at: Date.now() + ms, chunk });
    // Hold the sender back while the far side's buffer is full, as a link would.
    if (to.writableNeedDrain) {
      from.pause();
      to.once('drain', () => from.resume());
    }
    if (!scheduled) {
      scheduled = true;
      setTimeout(flush, ms);
    }
  });
  from.on('end', () => setTimeout(() => to.end(), ms + 1));
}

/** Starts a proxy to `target` (`HOST:PORT`) adding `delayMs` each way. */
export async function startDelayProxy(target: string, delayMs: number): Promise<DelayProxy> {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(target.slice(i + 1));
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host, port });
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      open.add(s);
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      s.on('close', () => {
        open.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    delayed(client, upstream, delayMs);
    delayed(upstream, client, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address() as net.AddressInfo;
  return {
    address: `127.0.0.1:${a.port}`,
    connections: () => open.size / 2,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
