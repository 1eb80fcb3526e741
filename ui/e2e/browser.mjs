// Shared set-up of the browser tests: the node under test (SKEIN_URL), what
// was loaded into it (SKEIN_E2E_DATA), Debian's chromium (never a
// downloaded browser) and screenshots.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const base = process.env.SKEIN_URL;
export const data = JSON.parse(process.env.SKEIN_E2E_DATA ?? '{}');
const artifacts = process.env.SKEIN_E2E_ARTIFACTS ?? 'e2e-artifacts';
const screenshots = process.env.SKEIN_E2E_SCREENSHOTS ?? artifacts;

if (!base) throw new Error('SKEIN_URL is not set: run these tests through `cargo test ui_` (tests/integration/ui.rs)');

export async function launch() {
  return chromium.launch({
    executablePath: process.env.SKEIN_CHROMIUM ?? '/usr/bin/chromium',
    // Root in CI: chromium's sandbox needs user namespaces it may not have.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

/** A page that fails the test on any uncaught error in the app. */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, acceptDownloads: true, ...options });
  const page = await context.newPage();
  // CI runs these beside the other integration tests on two cores: waits are
  // generous, and a wait that never ends still fails.
  page.setDefaultTimeout(60_000);
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e));
  return page;
}

export async function screenshot(page, name) {
  mkdirSync(screenshots, { recursive: true });
  await page.screenshot({ path: join(screenshots, `${name}.png`) });
}

export function artifactPath(name) {
  mkdirSync(artifacts, { recursive: true });
  return join(artifacts, name);
}

/** Runs `body` with a fresh page; on failure saves `failed-<name>.png` as an artifact. */
export async function withPage(browser, name, body) {
  const page = await newPage(browser);
  try {
    await body(page);
  } catch (e) {
    await page.screenshot({ path: artifactPath(`failed-${name}.png`) }).catch(() => {});
    throw e;
  } finally {
    await page.context().close();
  }
}
