import type { ClientChannel, PseudoTtyInfo } from 'ssh2';
import type { UpstreamLease } from './upstream-pool.js';

export type SessionRequest = 'exec' | 'shell' | 'subsystem';

/**
 * One client session channel's life (RFC 4254 §6): setup requests (pty-req, env, x11-req, auth-agent-req), then
 * exactly one of exec / shell / subsystem, which is decided before anything reaches the upstream.
 */
export type SessionChannelState =
  | { readonly kind: 'setup' }
  | { readonly kind: 'deciding'; readonly request: SessionRequest; readonly text: string }
  | {
      readonly kind: 'relaying';
      readonly request: SessionRequest;
      readonly upstream: ClientChannel;
      readonly lease: UpstreamLease;
    }
  | { readonly kind: 'refused'; readonly exitStatus: number }
  | { readonly kind: 'closed' };

export interface SessionSetup {
  pty: PseudoTtyInfo | undefined;
  readonly env: Record<string, string>;
  x11:
    | {
        readonly single: boolean;
        readonly protocol: string;
        readonly cookie: string;
        readonly screen: number;
      }
    | undefined;
  agentForward: boolean;
}
