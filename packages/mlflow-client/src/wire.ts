// MLflow REST JSON shapes (snake_case) and their conversion to our camelCase types.
// Responses are an edge: fields are read defensively and int64s may arrive as strings.
import type { Experiment, FileInfo, Metric, Run, RunInfo, RunStatus, Tag } from './types.js';
import type { WireShape } from './wire-shape.js';

/** JSON with NaN and ±Infinity written the way protobuf JSON accepts them ("NaN", "Infinity"). */
export function toWireJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v))
      return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
    return v;
  });
}

export interface WireTag {
  key?: string;
  value?: string;
}
export interface WireMetric {
  key?: string;
  value?: number | string;
  timestamp?: number | string;
  step?: number | string;
}
export interface WireExperiment {
  experiment_id?: string;
  name?: string;
  artifact_location?: string;
  lifecycle_stage?: string;
  tags?: WireTag[];
}
export interface WireRunInfo {
  run_id?: string;
  run_name?: string;
  experiment_id?: string;
  status?: string;
  start_time?: number | string;
  end_time?: number | string;
  artifact_uri?: string;
  lifecycle_stage?: string;
}
export interface WireRun {
  info?: WireRunInfo;
  data?: { metrics?: WireMetric[]; params?: WireTag[]; tags?: WireTag[] };
}
export interface WireFileInfo {
  path?: string;
  is_dir?: boolean;
  file_size?: number | string;
}

const TAG_SHAPE = { key: 'string', value: 'string' } as const;
const METRIC_SHAPE = { key: 'string', value: 'number', timestamp: 'number', step: 'number' } as const;
const RUN_INFO_SHAPE = {
  run_id: 'string',
  run_name: 'string',
  experiment_id: 'string',
  status: 'string',
  start_time: 'number',
  end_time: 'number',
  artifact_uri: 'string',
  lifecycle_stage: 'string',
} as const;
const RUN_SHAPE = {
  info: RUN_INFO_SHAPE,
  data: { metrics: [METRIC_SHAPE], params: [TAG_SHAPE], tags: [TAG_SHAPE] },
} as const;

/** The fields each response is read for, checked by the transport before the converters below see them. */
export const RESPONSE_SHAPES = {
  experiment: {
    experiment: {
      experiment_id: 'string',
      name: 'string',
      artifact_location: 'string',
      lifecycle_stage: 'string',
      tags: [TAG_SHAPE],
    },
  },
  experimentId: { experiment_id: 'string' },
  run: { run: RUN_SHAPE },
  runInfo: { run_info: RUN_INFO_SHAPE },
  runs: { runs: [RUN_SHAPE], next_page_token: 'string' },
  metricHistory: { metrics: [METRIC_SHAPE], next_page_token: 'string' },
  files: { files: [{ path: 'string', is_dir: 'boolean', file_size: 'number' }] },
} as const satisfies Record<string, { readonly [field: string]: WireShape }>;

const num = (v: number | string | undefined, fallback = 0): number =>
  v === undefined ? fallback : Number(v);

export const tagsFromWire = (tags: WireTag[] | undefined): Tag[] =>
  (tags ?? []).map((t) => ({ key: t.key ?? '', value: t.value ?? '' }));

export const metricFromWire = (m: WireMetric): Metric => ({
  key: m.key ?? '',
  value: num(m.value, Number.NaN),
  timestamp: num(m.timestamp),
  step: num(m.step),
});

export const experimentFromWire = (e: WireExperiment): Experiment => ({
  experimentId: e.experiment_id ?? '',
  name: e.name ?? '',
  artifactLocation: e.artifact_location ?? '',
  lifecycleStage: e.lifecycle_stage === 'deleted' ? 'deleted' : 'active',
  tags: tagsFromWire(e.tags),
});

export const runInfoFromWire = (i: WireRunInfo): RunInfo => ({
  runId: i.run_id ?? '',
  runName: i.run_name ?? '',
  experimentId: i.experiment_id ?? '',
  status: (i.status ?? 'RUNNING') as RunStatus,
  startTime: num(i.start_time),
  ...(i.end_time !== undefined && i.end_time !== null ? { endTime: num(i.end_time) } : {}),
  artifactUri: i.artifact_uri ?? '',
  lifecycleStage: i.lifecycle_stage === 'deleted' ? 'deleted' : 'active',
});

export const runFromWire = (r: WireRun): Run => ({
  info: runInfoFromWire(r.info ?? {}),
  data: {
    metrics: (r.data?.metrics ?? []).map(metricFromWire),
    params: tagsFromWire(r.data?.params),
    tags: tagsFromWire(r.data?.tags),
  },
});

export const fileInfoFromWire = (f: WireFileInfo): FileInfo => ({
  path: f.path ?? '',
  isDir: f.is_dir ?? false,
  ...(f.file_size !== undefined ? { fileSize: Number(f.file_size) } : {}),
});
