#!/usr/bin/env node
import { runEngineCli } from './cli-commands.js';

process.exitCode = await runEngineCli(process.argv.slice(2));
