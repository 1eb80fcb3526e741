// With [auth] on, the UI asks for a token, shows the server's reason for a
// bad one, then works with a good one: lists, trace view and downloads all
// carry it; it survives a reload of the tab and sign-out forgets it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { artifactPath, base, data, launch, screenshot, withPage } from '../e2e/browser.mjs';

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

async function signIn(page, token) {
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

test('sign in with a token, use the app, sign out', () =>
  withPage(browser, 'sign-in', async (page) => {
    await page.goto(`${base}/trace/${data.traceId}`);
    const form = page.getByRole('form', { name: 'Sign in' });
    await form.waitFor();
    await screenshot(page, 'sign-in');

    await signIn(page, 'skein_not-a-token');
    await page.getByRole('alert').getByText('unknown or revoked token').waitFor();
    await signIn(page, data.ingestToken);
    await page.getByRole('alert').getByText(/lacks the query scope/).waitFor();

    await signIn(page, data.token);
    await page.getByText('tenant').getByText('acme').waitFor();
    // The trace the page was opened for, fetched with the token.
    await page.getByText(data.service).first().waitFor();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download OTLP/JSON' }).click(),
    ]);
    const file = artifactPath('signed-in-trace.json');
    await download.saveAs(file);
    assert.ok(readFileSync(file, 'utf8').includes(data.traceId));

    // The token lasts as long as the tab.
    await page.reload();
    await page.getByText(data.service).first().waitFor();
    assert.equal(await form.count(), 0);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await form.waitFor();
    assert.deepEqual(page.errors, []);
  }));
