#!/usr/bin/env node
import { runLitsDataCli } from './cli/run.js';

process.exitCode = await runLitsDataCli(process.argv.slice(2));
