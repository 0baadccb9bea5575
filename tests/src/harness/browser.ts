/**
 * A real Chromium (Debian's `chromium`, installed by scripts/setup) driven by playwright-core, which downloads no
 * browser. Each test gets its own context (cookies); every page reports CSP violations and console errors, and
 * `shot` saves a screenshot under tests/artifacts/console/ (git-ignored) for the test run's artifacts.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot } from './cli.js';

export const ARTIFACTS = join(repoRoot, 'tests', 'artifacts', 'console');

export async function launchChromium(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: process.env['AGENTGATE_CHROMIUM'] ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface ConsolePage {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Content-Security-Policy violations the page reported (each would be a console problem). */
  readonly cspViolations: string[];
  shot(name: string): Promise<string>;
  close(): Promise<void>;
}

/** A new page in a new context (no cookies), or in `context` (signed in already). */
export async function openPage(browser: Browser, existing?: BrowserContext): Promise<ConsolePage> {
  const context = existing ?? (await browser.newContext({ viewport: { width: 1280, height: 900 } }));
  if (existing === undefined) {
    // Generous on a loaded 2-core machine: tests wait for conditions, these only bound a wait that never ends.
    context.setDefaultTimeout(20_000);
    context.setDefaultNavigationTimeout(30_000);
    // The page hook of the XSS tests: any script that runs from recorded text would set this.
    await context.addInitScript(() => {
      (globalThis as unknown as { __agentgateXss: number }).__agentgateXss = 0;
    });
  }
  const page = await context.newPage();
  const cspViolations: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text()))
      cspViolations.push(message.text());
  });
  return {
    context,
    page,
    cspViolations,
    async shot(name) {
      const file = join(ARTIFACTS, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      return file;
    },
    close: () => (existing === undefined ? context.close() : page.close()),
  };
}
