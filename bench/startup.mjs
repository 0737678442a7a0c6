#!/usr/bin/env node
// CLI start-up benchmark (`npm run build:ts` first): plexus --version and plexus volume list
// against node -e 0, median of per-round paired ratios; the result goes to bench/results/.
// The same as `plexus bench startup [--rounds N] [--json]`.
import { main } from '../dist/cli/main.js';

process.exitCode = await main([process.argv[0], 'plexus', 'bench', 'startup', ...process.argv.slice(2)]);
