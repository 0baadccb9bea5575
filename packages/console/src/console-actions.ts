/**
 * The console's state-changing actions: deciding an approval (through the same broker rules as the API) and ending
 * a live session (console admins only). Refusals go through `refuse`, which records them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAgentgateError } from '@agentgate/core';
import type { ApprovalsFeed } from './approvals-feed.js';
import type { ConsoleOptions } from './console-server.js';
import type { SafeHtml } from './html.js';
import { redirect } from './http.js';
import { messagePage, type PageContext } from './pages/layout.js';
import { mayDecide } from './roles.js';

export interface ConsoleActionDeps {
  readonly options: ConsoleOptions;
  readonly feed: ApprovalsFeed;
  readonly https: boolean;
  send(res: ServerResponse, status: number, body: SafeHtml): void;
  refuse(res: ServerResponse, context: PageContext, what: string, why: string, path: string): void;
}

export interface ConsoleActions {
  decideApproval(
    req: IncomingMessage,
    res: ServerResponse,
    context: PageContext,
    id: string,
    form: Map<string, string>,
    path: string,
  ): Promise<void>;
  terminate(res: ServerResponse, context: PageContext, id: string, path: string): void;
}

export function createConsoleActions(deps: ConsoleActionDeps): ConsoleActions {
  const { options, feed, https, send, refuse } = deps;
  return {
    async decideApproval(
      req: IncomingMessage,
      res: ServerResponse,
      context: PageContext,
      id: string,
      form: Map<string, string>,
      path: string,
    ): Promise<void> {
      const decision = form.get('decision');
      if (decision !== 'approve' && decision !== 'deny')
        return send(res, 400, messagePage('Bad request', 'Choose Approve or Deny.', context));
      const who = context.session.identity;
      const entry = feed.get(id);
      const pending = options.approvals.list().find((p) => p.id === id);
      if (!context.roles.approver)
        return refuse(res, context, `${decision} ${id}`, 'You are not an approver.', path);
      if (pending !== undefined) {
        const may = mayDecide(who, pending, options.identity, options.ruleApprovers?.(pending.rule));
        if (!may.allowed)
          return refuse(res, context, `${decision} ${id}`, `You cannot decide ${may.why}.`, path);
      }
      const reasonText = (form.get('reason') ?? '').trim().slice(0, 1000);
      const reason = reasonText === '' ? undefined : reasonText;
      try {
        await options.approvals.decideAnywhere(
          id,
          who,
          decision === 'approve' ? 'approved' : 'rejected',
          reason,
        );
      } catch (err) {
        if (isAgentgateError(err, 'UPSTREAM_UNAVAILABLE'))
          return send(res, 503, messagePage('Not decided', err.message, context));
        if (isAgentgateError(err, 'FORBIDDEN'))
          return refuse(res, context, `${decision} ${id}`, err.message, path);
        // An id nobody holds is not "already decided": saying so would tell the approver something untrue.
        if (isAgentgateError(err, 'NOT_FOUND'))
          return send(res, 404, messagePage('No such request', err.message, context));
        if (isAgentgateError(err, 'CONFLICT'))
          return send(res, 409, messagePage('Already decided', err.message, context));
        throw err;
      }
      options.log.info('console: approval decided', { approval: id, decision, by: who.name });
      redirect(res, entry === undefined ? '/approvals' : `/approvals#approval-${id}`, { https });
    },

    terminate(res: ServerResponse, context: PageContext, id: string, path: string): void {
      if (!context.roles.admin)
        return refuse(res, context, `end session ${id}`, 'Only console admins may end sessions.', path);
      const outcome = options.live.terminate(id, context.session.identity);
      if (!outcome.ended)
        return send(
          res,
          409,
          messagePage('Not ended', outcome.reason ?? 'The session could not be ended.', context),
        );
      options.log.info('console: session ended by admin', { session: id, by: context.session.identity.name });
      redirect(res, `/sessions/${id}/live`, { https });
    },
  };
}
