// Where a V8 CPU profile (.cpuprofile, from `node --cpu-prof` or the inspector) spends its time:
// self time by package and by function, and inclusive time by function, each also divided by the
// number of requests the profile covers.
//
//   node bench/cpu-profile-summary.mjs FILE.cpuprofile [--per-call N] [--top N]
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

/** `node_modules/<pkg>`, a workspace package, a node: module, or V8's own bucket ((idle), (garbage collector)). */
function packageOf({ url, functionName }) {
  const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (dep) return dep[1];
  const workspace = /\/packages\/([^/]+)\//.exec(url);
  if (workspace) return `@lits-ddp/${workspace[1]}`;
  if (url.startsWith('node:')) return 'node (js)';
  return url || (functionName.startsWith('(') ? functionName : 'node (native)');
}

function frameName({ url, functionName, lineNumber }) {
  const short = url.replace(/.*node_modules\//, '').replace(/.*\/packages\//, '');
  return `${functionName || '(anonymous)'} ${short ? `${short}:${lineNumber + 1}` : ''}`.trim();
}

/** The summary as text; `perCall` adds a column of time per request. */
export async function summarizeProfile(file, { perCall = 1, top = 25 } = {}) {
  const profile = JSON.parse(await readFile(file, 'utf8'));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  const selfUs = new Map();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

  const bySelf = new Map();
  const byPackage = new Map();
  const inclusive = new Map();
  const stackOf = (id) => {
    const frames = [];
    for (let at = id; at !== undefined; at = parentOf.get(at)) frames.push(nodes.get(at).callFrame);
    return frames;
  };
  const bump = (map, key, us) => map.set(key, (map.get(key) ?? 0) + us);
  let idleUs = 0;
  let profilerUs = 0;
  for (const [id, us] of selfUs) {
    const { callFrame } = nodes.get(id);
    // The inspector's own start, inside the profiled process's control handler: not the app's time.
    if (stackOf(id).some((frame) => frame.url.endsWith('bench/load-server.mjs'))) {
      profilerUs += us;
      continue;
    }
    if (callFrame.functionName === '(idle)') idleUs += us;
    bump(bySelf, frameName(callFrame), us);
    bump(byPackage, packageOf(callFrame), us);
    // Each function once per stack, so recursion is not counted twice.
    const seen = new Set();
    for (let at = id; at !== undefined; at = parentOf.get(at)) {
      const name = frameName(nodes.get(at).callFrame);
      if (!seen.has(name)) bump(inclusive, name, us);
      seen.add(name);
    }
  }
  const totalUs = profile.endTime - profile.startTime;
  const busyUs = totalUs - idleUs - profilerUs;
  const ms = (us) => (us / 1000).toFixed(1).padStart(8);
  const each = (us) => (us / 1000 / perCall).toFixed(3).padStart(7);
  const table = (map, n, skip = () => false) =>
    [...map]
      .filter(([name]) => !skip(name))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(
        ([name, us]) =>
          `${ms(us)} ms ${each(us)} ms/req ${((100 * us) / busyUs).toFixed(1).padStart(5)}%  ${name}`,
      )
      .join('\n');
  // Frames every stack passes through say nothing about where the time goes.
  const plumbing = (name) => /^\((root|program|idle)\)|^processTicksAndRejections|^runMicrotasks/.test(name);
  return [
    `profile ${ms(totalUs)} ms, busy (not idle, not the profiler) ${ms(busyUs)} ms = ${each(busyUs)} ms per request over ${perCall}; % of busy`,
    '-- self time by package',
    table(byPackage, 15, (name) => name === '(idle)'),
    '-- self time by function',
    table(bySelf, top, (name) => name === '(idle)'),
    '-- inclusive time by function',
    table(inclusive, top + 15, plumbing),
    '',
  ].join('\n');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { 'per-call': { type: 'string', default: '1' }, top: { type: 'string', default: '25' } },
  });
  for (const file of positionals)
    process.stdout.write(
      await summarizeProfile(file, { perCall: Number(values['per-call']), top: Number(values.top) }),
    );
}
