/** The sign-in pages: the way to the IdP's login page, and the one-time link's confirmation. */
import type { Identity } from '@agentgate/core';
import { html, type SafeHtml } from '../html.js';
import { page, time } from './layout.js';

export function loginPage(options: { oidc: boolean; returnTo: string; error?: string }): SafeHtml {
  return page({
    title: 'Sign in',
    body: html`<section class="message signin">
  <h1>Sign in to the agentgate console</h1>
  ${options.error === undefined ? '' : html`<p class="error">${options.error}</p>`}
  ${
    options.oidc
      ? html`<p><a class="button primary" id="sign-in" href="/auth/oidc?returnTo=${encodeURIComponent(options.returnTo)}">Sign in with your identity provider</a></p>`
      : html`<p>No identity provider is configured for the console. Ask an operator for a one-time sign-in link
        (<code>agentgate console link</code>).</p>`
  }
</section>`,
  });
}

export function linkConfirmPage(options: { token: string; identity: Identity; expiresAt: number }): SafeHtml {
  return page({
    title: 'Sign in with a link',
    body: html`<section class="message signin">
  <h1>Sign in as <strong id="link-identity">${options.identity.name}</strong>?</h1>
  <p>${options.identity.groups.length > 0 ? html`Groups: ${options.identity.groups.join(', ')}. ` : ''}This link works once and
    expires ${time(options.expiresAt)}; the console session it opens ends then too.</p>
  <form method="post" action="/auth/link">
    <input type="hidden" name="token" value="${options.token}">
    <button type="submit" class="primary" id="link-continue">Continue</button>
  </form>
</section>`,
  });
}
