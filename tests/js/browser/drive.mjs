// Opens the test page in Debian's chromium (headless, never a downloaded
// browser) and prints what its instrumentation reported as JSON.
// Usage: node drive.mjs <page url>   (SKEIN_CHROMIUM: the browser binary)
import { chromium } from 'playwright-core';

const url = process.argv[2];
const browser = await chromium.launch({
  executablePath: process.env.SKEIN_CHROMIUM ?? '/usr/bin/chromium',
  // Root in CI: chromium's sandbox needs user namespaces it may not have.
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  await page.goto(url);
  // Two cores shared with other tests: generous, but a wait that never ends still fails.
  await page.waitForFunction(() => window.skeinResult !== undefined, null, { timeout: 60_000 });
  const result = await page.evaluate(() => window.skeinResult);
  console.log(JSON.stringify({ ...result, problems }));
} finally {
  await browser.close();
}
