/** NBD exports of the agent's volumes (filled in with the native NBD server). */
import { PlexusError } from '../errors.js';
import type { AgentCore, ExportControl } from './core.js';

/** Where NBD listens. */
export interface ExportOptions {
  tcp?: string;
  unix?: string;
  allowRemote: boolean;
}

/** Starts serving the home's volumes over NBD. */
export function startExports(_core: AgentCore, _opts: ExportOptions): ExportControl {
  throw new PlexusError('E_STATE', 'NBD is not available yet');
}
