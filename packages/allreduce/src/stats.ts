/** Counters of one kind of collective. */
export interface OperationStats {
  calls: number;
  totalMs: number;
  lastMs: number;
  bytesSent: number;
  bytesReceived: number;
}

export type OperationName = 'allReduce' | 'allReduceExact' | 'broadcast' | 'allGather' | 'barrier';

export interface CommunicatorStats {
  /** Payload bytes this rank pushed to Redis (all collectives). */
  bytesSent: number;
  /** Payload bytes this rank popped from Redis. */
  bytesReceived: number;
  operations: Partial<Record<OperationName, OperationStats>>;
}

export class StatsRecorder {
  private current: CommunicatorStats = { bytesSent: 0, bytesReceived: 0, operations: {} };

  record(name: OperationName, ms: number, sent: number, received: number): void {
    const s = (this.current.operations[name] ??= {
      calls: 0,
      totalMs: 0,
      lastMs: 0,
      bytesSent: 0,
      bytesReceived: 0,
    });
    s.calls++;
    s.totalMs += ms;
    s.lastMs = ms;
    s.bytesSent += sent;
    s.bytesReceived += received;
    this.current.bytesSent += sent;
    this.current.bytesReceived += received;
  }

  snapshot(): CommunicatorStats {
    return structuredClone(this.current);
  }

  reset(): void {
    this.current = { bytesSent: 0, bytesReceived: 0, operations: {} };
  }
}
