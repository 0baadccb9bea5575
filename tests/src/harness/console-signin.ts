/**
 * Signing in to a console in the real browser through the real OpenID provider's own login and consent pages
 * (oidc-provider's devInteractions: any login name, any password).
 */
import type { Browser } from 'playwright-core';
import { openPage, type ConsolePage } from './browser.js';
import type { TestOidcProvider } from './oidc-provider.js';

/** A new browser context signed in as `name` on the console at `consoleUrl`, on the page `returnTo`. */
export async function signInThroughProvider(
  browser: Browser,
  idp: TestOidcProvider,
  consoleUrl: string,
  name: string,
  returnTo = '/',
  /** A page to sign in with (one whose requests a test watches); default a new one. */
  page?: ConsolePage,
): Promise<ConsolePage> {
  const p = page ?? (await openPage(browser));
  await p.page.goto(`${consoleUrl}${returnTo}`);
  await p.page.click('#sign-in');
  await p.page.waitForURL((url) => url.origin === idp.issuer);
  await p.page.fill('input[name=login]', name);
  await p.page.fill('input[name=password]', 'any password');
  await p.page.click('button[type=submit]');
  // The consent page of the provider, then back to the console.
  const consoleOrigin = new URL(consoleUrl).origin;
  await p.page.waitForURL((url) => url.origin === consoleOrigin || url.pathname.includes('/interaction/'));
  if (new URL(p.page.url()).origin === idp.issuer) await p.page.click('button[type=submit]');
  await p.page.waitForURL((url) => url.origin === consoleOrigin);
  await p.page.waitForSelector('#signed-in-identity');
  return p;
}
