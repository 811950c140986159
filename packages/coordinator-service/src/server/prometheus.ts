import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { RunEvent } from '@lits-ddp/protocol';
import type { WorkerPool } from '@lits-ddp/orchestrator';
import type { ExperimentQueue } from '../queue/experiment-queue.js';
import type { ExperimentStore } from '../queue/experiment-store.js';
import type { QueueFeeder } from '../queue/queue-feeder.js';

/** The coordinator's Prometheus metrics; queue, experiment and worker gauges are read at scrape time. */
export class CoordinatorMetrics {
  readonly registry = new Registry();
  private readonly stepSeconds: Histogram<'part'>;
  readonly httpSeconds: Histogram<'method' | 'route' | 'status_code'>;

  constructor(deps: {
    queue: ExperimentQueue;
    feeder: QueueFeeder;
    store: ExperimentStore;
    pool: WorkerPool;
  }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'lits_coordinator_' });
    new Gauge({
      name: 'lits_queue_jobs',
      help: 'Jobs of the experiments queue by BullMQ state (waiting + prioritized + delayed = queue depth)',
      labelNames: ['state'],
      registers,
      async collect() {
        for (const [state, n] of Object.entries(await deps.queue.counts())) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'lits_queue_outbox',
      help: 'Stored submissions whose job is not in the queue yet (the queue feeder adds them; growing: it cannot)',
      registers,
      async collect() {
        this.set(await deps.feeder.pending());
      },
    });
    new Gauge({
      name: 'lits_experiments',
      help: 'Experiments by status',
      labelNames: ['status'],
      registers,
      async collect() {
        for (const [status, n] of Object.entries(await deps.store.countByStatus())) this.set({ status }, n);
      },
    });
    new Gauge({
      name: 'lits_workers',
      help: 'Registered workers by state (dead = heartbeat expired)',
      labelNames: ['state'],
      registers,
      async collect() {
        const counts: Record<string, number> = { idle: 0, busy: 0, stopping: 0, dead: 0 };
        for (const w of await deps.pool.list()) {
          const state = w.heartbeatAgeMs === undefined ? 'dead' : w.info.state;
          counts[state] = (counts[state] ?? 0) + 1;
        }
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    this.stepSeconds = new Histogram({
      name: 'lits_step_seconds',
      help: 'Optimiser step time per rank, split into compute, all-reduce, data and other',
      labelNames: ['part'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.httpSeconds = new Histogram({
      name: 'lits_http_request_seconds',
      help: 'HTTP request handling time',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
  }

  observeStep(e: Extract<RunEvent, { type: 'progress' }>): void {
    const t = e.timings;
    this.stepSeconds.observe({ part: 'compute' }, t.computeMs / 1000);
    this.stepSeconds.observe({ part: 'allreduce' }, t.allReduceMs / 1000);
    this.stepSeconds.observe({ part: 'data' }, t.dataMs / 1000);
    this.stepSeconds.observe({ part: 'other' }, t.otherMs / 1000);
    this.stepSeconds.observe({ part: 'total' }, (t.computeMs + t.allReduceMs + t.dataMs + t.otherMs) / 1000);
  }
}
