/** The agent's structured log: one JSON object a line, each with its time and event name. */
import fs from 'node:fs';

/** Fields of one log line besides its time and event. */
export type LogFields = Record<string, unknown>;

/** Writes log lines to a stream (foreground: stderr) or appends them to a file (detached). */
export class AgentLog {
  private fd: number | undefined;
  private muted = false;

  constructor(file?: string) {
    if (file) this.fd = fs.openSync(file, 'a', 0o600);
  }

  /** Logs one event. Logging never throws: a full disk must not stop the agent. */
  event(event: string, fields: LogFields = {}): void {
    if (this.muted) return;
    const line = `${JSON.stringify({ time: new Date().toISOString(), event, ...fields }, replacer)}\n`;
    try {
      if (this.fd !== undefined) fs.writeSync(this.fd, line);
      else process.stderr.write(line);
    } catch {
      // Nowhere left to report it.
    }
  }

  /** A line already in JSON (from the native core's events), logged as it is. */
  raw(json: string): void {
    try {
      const { event, ...fields } = JSON.parse(json) as LogFields;
      this.event(`nbd-${String(event ?? 'event')}`, fields);
    } catch {
      this.event('nbd', { detail: json });
    }
  }

  /** Stops logging to stderr: a start that failed is reported once, as the command's error. */
  muteStderr(): void {
    if (this.fd === undefined) this.muted = true;
  }

  /** Closes the log file. */
  close(): void {
    if (this.fd === undefined) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      // Already gone.
    }
    this.fd = undefined;
  }
}

function replacer(_key: string, value: unknown): unknown {
  if (Buffer.isBuffer(value)) return `<${value.length} bytes>`;
  if (value instanceof Error) return { message: value.message, code: (value as { code?: unknown }).code };
  return value;
}
