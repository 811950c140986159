// `node library-probe-child.js NAME_OR_PATH…`: asks the dynamic loader to open each shared library and prints
// [{ name, loads, error }] as one marked JSON line. process.dlopen is the only dlopen Node has: on a library that
// is not a Node addon it opens the file (with its dependencies), then fails with "did not self-register", which
// therefore means the loader found and mapped it; any other error is the loader's own (not found, a missing
// dependency, an undefined symbol). In a child, so that a library's constructors cannot harm the doctor.
import { errorMessage } from '@lits-ddp/errors';
import { PROBE_LINE_PREFIX } from './engine-probe-result.js';

const results = process.argv.slice(2).map((name) => {
  try {
    process.dlopen({ exports: {} }, name);
    return { name, loads: true, error: null };
  } catch (err) {
    const message = errorMessage(err);
    if (message.includes('did not self-register')) return { name, loads: true, error: null };
    return { name, loads: false, error: message.split('\n')[0] ?? message };
  }
});
process.stdout.write(`${PROBE_LINE_PREFIX}${JSON.stringify(results)}\n`);
