/* global document, window, uPlot */
// The coordinator dashboard: experiments, live curves fed by SSE, workers, cancel. No framework.
'use strict';

const state = {
  token: localStorage.getItem('lits-token') || '',
  selected: window.location.hash.slice(1) || '',
  experiments: [],
  run: undefined,
  stream: undefined,
};

const $ = (sel) => document.querySelector(sel);
const TERMINAL = new Set(['finished', 'failed', 'cancelled']);
const fmt = (v, d = 4) => (typeof v === 'number' ? v.toFixed(d) : '–');
const age = (iso) => {
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  return s < 120 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
};

function setConn(text) {
  $('#conn').textContent = text;
}

async function api(path, init = {}) {
  const res = await fetch(path, {
    ...init,
    headers: { ...(init.headers || {}), authorization: `Bearer ${state.token}` },
  });
  if (res.status === 401) throw new Error('unauthorised: enter a valid API token');
  if (!res.ok) throw new Error(`${res.status} ${(await res.text()).slice(0, 200)}`);
  return res.json();
}

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function renderExperiments() {
  const body = $('#experiments tbody');
  body.replaceChildren(
    ...state.experiments.map((e) => {
      const tr = document.createElement('tr');
      tr.dataset.id = e.id;
      if (e.id === state.selected) tr.className = 'selected';
      const status = cell(e.status, `status ${e.status}`);
      const m = e.latestMetrics || {};
      tr.append(
        cell(e.id),
        document.createElement('td'),
        cell(String(e.priority)),
        // Ranks of the current generation, when the run has one and it is not the size asked for.
        cell(
          e.worldSize !== undefined && e.worldSize !== e.workers
            ? `${e.worldSize}/${e.workers}`
            : String(e.workers),
        ),
        cell(age(e.submittedAt)),
        cell(String(e.restarts)),
        cell(fmt(m.train_avg_loss)),
        cell(fmt(m.val_mean_iou)),
      );
      tr.children[1].append(status);
      const actions = document.createElement('td');
      if (!TERMINAL.has(e.status)) {
        const b = document.createElement('button');
        b.className = 'cancel';
        b.textContent = 'Cancel';
        b.dataset.cancel = e.id;
        b.addEventListener('click', (ev) => {
          ev.stopPropagation();
          cancel(e.id);
        });
        actions.append(b);
      }
      tr.append(actions);
      tr.addEventListener('click', () => select(e.id));
      return tr;
    }),
  );
}

async function refreshWorkers() {
  const { workers } = await api('/v1/workers');
  $('#workers tbody').replaceChildren(
    ...workers.map((w) => {
      const tr = document.createElement('tr');
      const hb = w.heartbeatAgeMs === undefined ? 'expired' : `${(w.heartbeatAgeMs / 1000).toFixed(1)} s`;
      tr.append(
        cell(w.id),
        cell(w.engine),
        cell(w.device),
        cell(w.state, `status ${w.state === 'busy' ? 'running' : w.state === 'dead' ? 'failed' : ''}`),
        cell(w.runId ? `${w.runId} / ${w.rank ?? '–'}` : '–'),
        cell(hb),
      );
      return tr;
    }),
  );
}

async function refresh() {
  if (!state.token) {
    setConn('enter the API token');
    return;
  }
  try {
    const page = await api('/v1/experiments?limit=50');
    state.experiments = page.items;
    renderExperiments();
    await refreshWorkers();
    if (!state.selected && page.items[0]) select(page.items[0].id);
    setConn(`connected · ${page.total} experiment(s)`);
  } catch (err) {
    setConn(String(err.message || err));
  }
}

async function cancel(id) {
  try {
    const r = await api(`/v1/experiments/${encodeURIComponent(id)}`, { method: 'DELETE' });
    setConn(`${id}: ${r.status}`);
  } catch (err) {
    setConn(String(err.message || err));
  }
  refresh();
}

// ---- the selected run: curves from its SSE stream ----

function newRun(id) {
  return {
    id,
    status: '',
    info: undefined, // the REST record's name, size and epochs, once fetched
    generations: new Map(), // generation → its event (or REST entry), from either source
    resuming: undefined, // the generation whose ranks have not reported a step yet
    loss: new Map(), // x (epochs, fractional) → [stepLoss, epochLoss]
    iou: new Map(), // epoch → [train0, train1, train2, val0, val1, val2]
    lossPlot: undefined,
    iouPlot: undefined,
  };
}

function series(map, width) {
  const xs = [...map.keys()].sort((a, b) => a - b);
  const cols = Array.from({ length: width }, (_, i) => xs.map((x) => map.get(x)[i] ?? null));
  return [xs, ...cols];
}

function plot(run, which) {
  const isLoss = which === 'loss';
  const el = $(isLoss ? '#loss-chart' : '#iou-chart');
  const data = isLoss ? series(run.loss, 2) : series(run.iou, 6);
  const key = isLoss ? 'lossPlot' : 'iouPlot';
  if (!run[key]) {
    const colours = ['#1f77b4', '#d62728', '#2ca02c'];
    const s = isLoss
      ? [
          { label: 'step loss', stroke: '#7aa6d6', spanGaps: true },
          { label: 'epoch loss', stroke: '#d62728', width: 2, spanGaps: true, points: { show: true } },
        ]
      : [0, 1, 2]
          .map((c) => ({
            label: `train IoU ${c}`,
            stroke: colours[c],
            spanGaps: true,
            points: { show: true },
          }))
          .concat(
            [0, 1, 2].map((c) => ({
              label: `val IoU ${c}`,
              stroke: colours[c],
              dash: [6, 4],
              spanGaps: true,
              points: { show: true },
            })),
          );
    el.replaceChildren();
    run[key] = new uPlot(
      {
        width: 560,
        height: 260,
        scales: { x: { time: false } },
        axes: [{ label: 'epoch' }, { label: isLoss ? 'loss' : 'IoU' }],
        series: [{ label: 'epoch' }, ...s],
      },
      data,
      el,
    );
  } else run[key].setData(data);
}

const plural = (n, what) => `${n} ${what}${n === 1 ? '' : 's'}`;

/** As `lits logs` prints it: `generation 2: 3 workers (shrink) from epoch 2 — <reason>`. */
const describeGeneration = (g) =>
  `generation ${g.generation}: ${plural(g.worldSize, 'worker')} (${g.change}) from epoch ${g.resumeEpoch}` +
  (g.reason ? ` — ${g.reason}` : '');

/** The run's line under its title: the world size of its current generation among the rest. */
function renderInfo(run) {
  const d = run.info;
  if (!d) return;
  const current = [...run.generations.values()].at(-1);
  const size = current
    ? `world size ${current.worldSize} (generation ${current.generation}; workers ${d.spec['min-workers'] ?? d.workers}–${d.spec['max-workers'] ?? d.workers})`
    : `${plural(d.workers, 'worker')}`;
  const tracking = d.tracking ? ` · tracking: ${d.tracking.kind} ${d.tracking.runId}` : '';
  $('#run-info').textContent = `${d.experimentName} · ${size} · ${d.spec.max_epochs} epochs${tracking}`;
}

/** One line per generation (oldest first), with the workers of its ranks. */
function renderGenerations(run) {
  const list = [...run.generations.values()].sort((a, b) => a.generation - b.generation);
  $('#run-generations').replaceChildren(
    ...list.map((g) => {
      const li = document.createElement('li');
      li.value = g.generation;
      li.textContent = `${describeGeneration(g)} · ranks: ${g.workers.join(', ')}${g.at ? ` · ${g.at.slice(11, 19)}` : ''}`;
      return li;
    }),
  );
  renderInfo(run);
}

function addGeneration(run, g) {
  // The REST record and the event stream both carry them, the record's with when (`at`): merged.
  run.generations.set(g.generation, { ...run.generations.get(g.generation), ...g });
  renderGenerations(run);
}

/** The status line: a generation's ranks are resuming until the first of them reports a step. */
function renderStatus(run) {
  const el = $('#run-status');
  if (run.resuming && run.status === 'running') {
    const g = run.resuming;
    el.textContent = `resuming at ${plural(g.worldSize, 'worker')} from epoch ${g.resumeEpoch}`;
    el.title = g.reason || '';
  } else {
    const restart = run.status === 'restarting' && run.restarts ? ` (restart ${run.restarts})` : '';
    el.textContent = `${run.status}${restart}`;
    el.title = run.message || '';
  }
  el.className = `status ${run.status}`;
}

function onEvent(run, e) {
  if (e.type === 'progress' && run.resuming && e.generation >= run.resuming.generation) {
    run.resuming = undefined;
    renderStatus(run);
  }
  if (e.type === 'generation') {
    addGeneration(run, e);
    run.resuming = e;
    renderStatus(run);
  } else if (e.type === 'progress' && e.rank === 0) {
    const x = e.epoch + (e.step + 1) / e.stepsPerEpoch;
    run.loss.set(x, [e.loss, run.loss.get(x)?.[1] ?? null]);
    plot(run, 'loss');
  } else if (e.type === 'metrics' && e.step === undefined) {
    const m = e.metrics;
    const x = e.epoch + 1;
    if (m.train_avg_loss !== undefined) {
      run.loss.set(x, [run.loss.get(x)?.[0] ?? null, m.train_avg_loss]);
      plot(run, 'loss');
    }
    if (m.train_iou_0 !== undefined || m.val_iou_0 !== undefined) {
      const row = run.iou.get(x) || [null, null, null, null, null, null];
      [0, 1, 2].forEach((c) => {
        if (m[`train_iou_${c}`] !== undefined) row[c] = m[`train_iou_${c}`];
        if (m[`val_iou_${c}`] !== undefined) row[3 + c] = m[`val_iou_${c}`];
      });
      run.iou.set(x, row);
      plot(run, 'iou');
    }
  } else if (e.type === 'status') {
    run.status = e.status;
    run.restarts = e.restarts;
    run.message = e.message;
    renderStatus(run);
  } else if (e.type === 'waiting') {
    // Until the generation runs (the next status event): how many workers are missing, and why.
    $('#run-status').textContent =
      `${run.status || 'starting'}: waiting for ${e.missing} more worker${e.missing === 1 ? '' : 's'}`;
    $('#run-status').title = e.message;
  }
}

/** SSE over fetch (so the token travels in a header), resuming with Last-Event-ID after a drop. */
async function follow(run, signal) {
  let lastId = '';
  while (!signal.aborted) {
    try {
      const res = await fetch(`/v1/experiments/${encodeURIComponent(run.id)}/events`, {
        headers: { authorization: `Bearer ${state.token}`, ...(lastId ? { 'last-event-id': lastId } : {}) },
        signal,
      });
      if (!res.ok) throw new Error(`events: ${res.status}`);
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const msg = { id: '', event: 'message', data: '' };
          for (const line of block.split('\n')) {
            const at = line.indexOf(':');
            if (at <= 0) continue;
            const field = line.slice(0, at);
            const val = line.slice(at + 1).replace(/^ /, '');
            if (field === 'data') msg.data += val;
            else if (field === 'id' || field === 'event') msg[field] = val;
          }
          if (msg.event === 'end') {
            const summary = JSON.parse(msg.data);
            onEvent(run, { type: 'status', status: summary.status });
            return;
          }
          if (msg.id) lastId = msg.id;
          if (msg.data) onEvent(run, JSON.parse(msg.data));
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      setConn(`events: ${err.message || err}; reconnecting`);
    }
    await new Promise((r) => setTimeout(r, 1500));
  }
}

function select(id) {
  if (state.selected === id && state.run) return;
  state.selected = id;
  window.location.hash = id;
  state.stream?.abort();
  state.run = newRun(id);
  state.stream = new AbortController();
  $('#run').hidden = false;
  $('#run-id').textContent = id;
  $('#loss-chart').replaceChildren();
  $('#iou-chart').replaceChildren();
  $('#run-generations').replaceChildren();
  renderExperiments();
  const run = state.run;
  api(`/v1/experiments/${encodeURIComponent(id)}`)
    .then((d) => {
      if (state.run !== run) return; // another run was selected meanwhile
      run.info = d;
      // The stream may have dropped a long run's first events; the record keeps the last 50 generations.
      for (const g of d.generations || []) addGeneration(run, g);
      renderInfo(run);
    })
    .catch(() => undefined);
  follow(state.run, state.stream.signal);
}

$('#token').value = state.token;
$('#token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  state.token = $('#token').value.trim();
  localStorage.setItem('lits-token', state.token);
  state.run = undefined;
  refresh().then(() => state.selected && select(state.selected));
});

/** For tests and the curious: what the page holds. */
window.litsDashboard = {
  state,
  lossPoints: () => (state.run ? [...state.run.loss.values()].filter((v) => v[0] !== null).length : 0),
  iouPoints: () => (state.run ? state.run.iou.size : 0),
};

refresh().then(() => state.selected && select(state.selected));
setInterval(refresh, 2000);
