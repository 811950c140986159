export interface InstallReport {
  /** The executable (or venv python) that will run the service. */
  path: string;
  /** True when this call installed it. */
  installed: boolean;
  ms: number;
}

/** A server process this package owns: started on loopback, stoppable, restartable on the same port. */
export interface LocalService {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** How long the last start took until the health probe passed. */
  readonly startupMs: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops the server and removes its temp folder. */
  dispose(): Promise<void>;
  healthy(): Promise<boolean>;
}
