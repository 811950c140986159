// A real HTTP server speaking the part of the Kubernetes API that the launcher uses (Jobs: create,
// read, delete; pods: list), for @kubernetes/client-node to talk to. No cluster runs here, so this
// stands in for kube-apiserver + the Job controller + kubelet: it validates each Job against the
// strict Kubernetes schema (422 like the API server), and can run each index's pod as a real
// `lits worker` process with the Job's own args and env, expanded as Kubernetes does.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { V1Job } from '@kubernetes/client-node';
import { KubeConfig } from '@kubernetes/client-node';
import { validateKubernetes } from '@lits-ddp/deploy-schemas';
import { appBin } from './app-bins.js';

const WORKER_MAIN = appBin('@lits-ddp/gpu-worker', 'lits-worker');
const INDEX_FIELD = "metadata.annotations['batch.kubernetes.io/job-completion-index']";

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
}

interface JobEntry {
  job: V1Job;
  pods: ChildProcess[];
  exitCodes: (number | null)[];
  /** Every pod exit in order, replaced pods included. */
  exits: { index: number; code: number }[];
  starts: number[];
  failures: number;
  waiting?: string;
}

export interface StandInOptions {
  /** Env every pod gets (what the ConfigMap would give: REDIS_URL, LITS_KEY_PREFIX …). */
  podEnv: Record<string, string>;
  /** Whether to run pods for this Job (false: they stay Pending). */
  runPods: (job: V1Job) => boolean;
  /** An error status to answer a create with, e.g. 403 (RBAC). */
  refuseCreate?: (job: V1Job) => { code: number; reason: string; message: string } | undefined;
  onPodOutput?: (line: string) => void;
  /** Pods whose first start crashes at once with Node's exit code 1 (an uncaught error), as a flaky node would. */
  crashFirstStart?: (job: V1Job, index: number) => boolean;
}

const expand = (value: string, env: Record<string, string>): string =>
  value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole);

export class KubernetesApiStandIn {
  readonly requests: RecordedRequest[] = [];
  readonly jobs = new Map<string, JobEntry>();
  private server: Server | undefined;
  url = '';

  constructor(private readonly opts: StandInOptions) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req, res).catch((err: unknown) =>
        this.send(res, 500, this.status(500, 'InternalError', String(err))),
      );
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (!address || typeof address === 'string') throw new Error('no address');
    this.url = `http://127.0.0.1:${address.port}`;
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'stand-in', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'coordinator', token: 'service-account-token' }],
      contexts: [{ name: 'stand-in', cluster: 'stand-in', user: 'coordinator' }],
      currentContext: 'stand-in',
    });
    return kc;
  }

  async close(): Promise<void> {
    for (const entry of this.jobs.values())
      for (const p of entry.pods) if (p.exitCode === null) p.kill('SIGKILL');
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** What the Job controller does when backoffLimit is exceeded (or a FailJob rule matches). */
  failJob(name: string, reason: string, message: string): void {
    const entry = this.jobs.get(name);
    if (!entry) throw new Error(`no Job ${name}`);
    entry.job.status = {
      ...entry.job.status,
      conditions: [{ type: 'Failed', status: 'True', reason, message }],
    };
  }

  /** Makes the Job's pods report a waiting reason (as a kubelet that cannot pull the image). */
  podsWaiting(name: string, reason: string): void {
    const entry = this.jobs.get(name);
    if (entry) entry.waiting = reason;
  }

  private status(code: number, reason: string, message: string): unknown {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  }

  private send(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body: unknown = text ? JSON.parse(text) : undefined;
    const method = req.method ?? 'GET';
    this.requests.push({ method, path: url.pathname, query: url.searchParams, body });
    if (req.headers.authorization !== 'Bearer service-account-token')
      return this.send(res, 401, this.status(401, 'Unauthorized', 'Unauthorized'));

    const jobs = /^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs(?:\/([^/]+))?$/.exec(url.pathname);
    const pods = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(url.pathname);
    if (jobs && method === 'POST' && !jobs[2]) return this.create(jobs[1] as string, body as V1Job, res);
    if (jobs && jobs[2]) {
      const entry = this.jobs.get(jobs[2]);
      if (!entry)
        return this.send(res, 404, this.status(404, 'NotFound', `jobs.batch "${jobs[2]}" not found`));
      if (method === 'GET') return this.send(res, 200, entry.job);
      if (method === 'DELETE') {
        this.jobs.delete(jobs[2]);
        // Background propagation: the Job goes now, its pods are collected after.
        for (const p of entry.pods) if (p.exitCode === null) p.kill('SIGTERM');
        return this.send(res, 200, this.status(200, 'Success', 'deleted'));
      }
    }
    if (pods && method === 'GET') {
      const jobName = /^job-name=(.+)$/.exec(url.searchParams.get('labelSelector') ?? '')?.[1];
      const entry = jobName ? this.jobs.get(jobName) : undefined;
      const count = entry?.job.spec?.parallelism ?? 0;
      const items = entry?.waiting
        ? Array.from({ length: count }, (_, i) => ({
            metadata: { name: `${jobName}-${i}-abcde` },
            status: {
              phase: 'Pending',
              containerStatuses: [
                {
                  name: 'worker',
                  ready: false,
                  restartCount: 0,
                  image: '',
                  imageID: '',
                  state: { waiting: { reason: entry.waiting, message: 'Back-off pulling image' } },
                },
              ],
            },
          }))
        : [];
      return this.send(res, 200, { kind: 'PodList', apiVersion: 'v1', metadata: {}, items });
    }
    return this.send(res, 404, this.status(404, 'NotFound', `${method} ${url.pathname} is not served here`));
  }

  private create(namespace: string, job: V1Job, res: ServerResponse): void {
    const issues = validateKubernetes(job, 'POST jobs');
    if (issues.length > 0)
      return this.send(
        res,
        422,
        this.status(422, 'Invalid', issues.map((i) => `${i.path}: ${i.message}`).join('; ')),
      );
    const refusal = this.opts.refuseCreate?.(job);
    if (refusal)
      return this.send(res, refusal.code, this.status(refusal.code, refusal.reason, refusal.message));
    const name = job.metadata?.name as string;
    if (job.metadata?.namespace !== namespace)
      return this.send(
        res,
        400,
        this.status(
          400,
          'BadRequest',
          'the namespace of the object does not match the namespace on the request',
        ),
      );
    if (this.jobs.has(name))
      return this.send(res, 409, this.status(409, 'AlreadyExists', `jobs.batch "${name}" already exists`));
    const stored: V1Job = { ...job, status: { active: job.spec?.parallelism ?? 0 } };
    const entry: JobEntry = { job: stored, pods: [], exitCodes: [], exits: [], starts: [], failures: 0 };
    this.jobs.set(name, entry);
    if (this.opts.runPods(job)) this.runPods(entry);
    this.send(res, 201, stored);
  }

  /** The kubelet's part: one `lits worker` process per completion index. */
  private runPods(entry: JobEntry): void {
    const count = entry.job.spec?.parallelism ?? 0;
    for (let index = 0; index < count; index++) this.startPod(entry, index);
  }

  /** Kills the running pod of an index (as a node failure would). */
  killPod(name: string, index: number): void {
    const pod = this.jobs.get(name)?.pods[index];
    if (!pod || pod.exitCode !== null) throw new Error(`no running pod ${index} of ${name}`);
    pod.kill('SIGKILL');
  }

  /** Pods started per index, replacements included. */
  podStarts(name: string): number[] {
    return this.jobs.get(name)?.starts ?? [];
  }

  private startPod(entry: JobEntry, index: number): void {
    const container = entry.job.spec?.template.spec?.containers[0];
    if (!container) throw new Error('Job without a container');
    const env: Record<string, string> = { ...this.opts.podEnv };
    for (const v of container.env ?? []) {
      if (v.valueFrom?.fieldRef?.fieldPath === INDEX_FIELD) env[v.name] = String(index);
      else if (v.valueFrom) throw new Error(`env ${v.name}: valueFrom is not served here`);
      else env[v.name] = expand(v.value ?? '', env);
    }
    env.JOB_COMPLETION_INDEX = String(index);
    const [command, ...args] = (container.args ?? []).map((a) => expand(a, env));
    // The image's entrypoint is `lits`; `lits worker …` runs the worker's own CLI.
    if (command !== 'worker') throw new Error(`pod runs "lits ${command}", not lits worker`);
    const crash = entry.starts[index] === undefined && this.opts.crashFirstStart?.(entry.job, index) === true;
    const argv = crash ? ['-e', "throw new Error('crash at start')"] : [WORKER_MAIN, ...args];
    const child = spawn(process.execPath, argv, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [child.stdout, child.stderr])
      stream?.on('data', (d: Buffer) => this.opts.onPodOutput?.(`[pod ${index}] ${d.toString().trimEnd()}`));
    entry.pods[index] = child;
    entry.exitCodes[index] = null;
    entry.starts[index] = (entry.starts[index] ?? 0) + 1;
    child.on('exit', (code, signal) =>
      this.podExited(entry, index, code ?? 128 + (signal === 'SIGKILL' ? 9 : 15)),
    );
  }

  /** The Job controller: the Job's podFailurePolicy FailJob exit codes, else backoffLimit and a same-index replacement. */
  private podExited(entry: JobEntry, index: number, code: number): void {
    entry.exitCodes[index] = code;
    entry.exits.push({ index, code });
    if (!this.jobs.has(entry.job.metadata?.name as string) || entry.job.status?.conditions) return;
    const count = entry.job.spec?.parallelism ?? 0;
    const fail = (reason: string, message: string): void => {
      entry.job.status = {
        failed: entry.failures,
        conditions: [{ type: 'Failed', status: 'True', reason, message }],
      };
      for (const p of entry.pods) if (p.exitCode === null) p.kill('SIGTERM');
    };
    if (code === 0) {
      if (entry.exitCodes.filter((c) => c === 0).length === count)
        entry.job.status = { succeeded: count, conditions: [{ type: 'Complete', status: 'True' }] };
      return;
    }
    entry.failures++;
    const rules = entry.job.spec?.podFailurePolicy?.rules ?? [];
    const failJob = rules.findIndex(({ action, onExitCodes: on }) => {
      if (action !== 'FailJob' || !on) return false;
      return on.operator === 'In' ? on.values.includes(code) : !on.values.includes(code);
    });
    if (failJob >= 0)
      return fail(
        'PodFailurePolicy',
        `Container worker for pod ${index} failed with exit code ${code} matching FailJob rule at index ${failJob}`,
      );
    if (entry.failures > (entry.job.spec?.backoffLimit ?? 6))
      return fail('BackoffLimitExceeded', 'Job has reached the specified backoff limit');
    setTimeout(() => this.startPod(entry, index), 300);
  }
}
