#!/usr/bin/env node
import { runUnetCli } from './cli-commands.js';

process.exitCode = await runUnetCli(process.argv.slice(2));
