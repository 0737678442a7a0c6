/** A description of the machine a benchmark ran on, stored with its results. */
import os from 'node:os';

/** Machine facts recorded with every result file. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryBytes: number;
  kernel: string;
  platform: string;
  node: string;
}

/** Reads the machine facts. */
export function describeMachine(): MachineInfo {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    kernel: os.release(),
    platform: `${os.platform()}-${os.arch()}`,
    node: process.version,
  };
}
