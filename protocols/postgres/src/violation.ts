import { AgentgateError } from '@agentgate/core';

/** A client broke the protocol: the session ends with FATAL 08P01 and this message. */
export function protocolViolation(message: string): AgentgateError {
  return new AgentgateError('PROTOCOL_VIOLATION', `agentgate: protocol violation: ${message}`);
}
