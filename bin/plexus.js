#!/usr/bin/env node
// The CLI lives in dist/ (built by `npm install`); this file only starts it.
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv);
