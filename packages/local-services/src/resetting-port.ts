import { createServer, type Server, type Socket } from 'node:net';

/**
 * A stand-in for a service that is down but whose host is up: its port answers every connection with a reset
 * and counts them. A test of a client's outage handling waits for a number of reconnect attempts, not for a time.
 */
export class ResettingPort {
  attempts = 0;
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly server: Server) {}

  /** Listens on 127.0.0.1:`port` (the down service's port, free once it stopped). */
  static async open(port: number): Promise<ResettingPort> {
    const server = createServer();
    const p = new ResettingPort(server);
    server.on('connection', (socket: Socket) => {
      p.attempts++;
      socket.resetAndDestroy();
      for (const w of p.waiters) w();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    return p;
  }

  /** Resolves once `n` connections were reset; rejects after `ms`, saying how many came. */
  waitForAttempts(n: number, ms = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.attempts < n) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(
        () => reject(new Error(`${this.attempts} reconnect attempts within ${ms} ms, wanted ${n}`)),
        ms,
      );
      this.waiters.add(check);
      check();
    });
  }

  /** Frees the port (for the service to come back on it). */
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
