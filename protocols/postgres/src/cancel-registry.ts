/**
 * CancelRequest routing (PostgreSQL docs "Canceling Requests in Progress"): each client gets the gateway's own
 * BackendKeyData; a cancel that presents it reaches the session, which cancels its pending decision and/or
 * forwards a CancelRequest with the real upstream key. Unknown keys are ignored, as the server does.
 */
import { randomInt } from 'node:crypto';

export interface Cancellable {
  cancel(): void;
}

export class CancelRegistry {
  private readonly sessions = new Map<string, Cancellable>();

  /** Allocates a unique (processId, secretKey) pair for a session. */
  register(session: Cancellable): { processId: number; secretKey: number } {
    for (;;) {
      const processId = randomInt(1, 0x7fffffff);
      const secretKey = randomInt(-0x80000000, 0x7fffffff);
      const key = `${processId}:${secretKey}`;
      if (this.sessions.has(key)) continue;
      this.sessions.set(key, session);
      return { processId, secretKey };
    }
  }

  unregister(processId: number, secretKey: number): void {
    this.sessions.delete(`${processId}:${secretKey}`);
  }

  find(processId: number, secretKey: number): Cancellable | undefined {
    return this.sessions.get(`${processId}:${secretKey}`);
  }
}
