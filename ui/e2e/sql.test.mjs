// The SQL console runs a README example, shows typed results, reports a bad
// query's error with its position, and downloads the result as CSV.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { artifactPath, base, launch, screenshot, withPage } from './browser.mjs';

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

test('run an example query, see the error of a bad one, download CSV', () =>
  withPage(browser, 'run-an-example-query-see-the-error-of-a-', async (page) => {
    await page.goto(base + '/sql');
    await page.getByLabel('Example queries').selectOption({ label: 'Error rate per service' });
    await page.getByRole('button', { name: /^Run/ }).click();
    const results = page.getByTestId('sql-results');
    await results.getByText('error_rate').waitFor();
    await results.getByText('Float64').waitFor();
    await results.getByRole('cell', { name: 'batch-worker' }).waitFor();
    await screenshot(page, 'sql');

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
    const file = artifactPath('result.csv');
    await download.saveAs(file);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines[0], 'service_name,error_rate,spans');
    assert.ok(lines.some((l) => l.startsWith('batch-worker,')), lines.join('\n'));

    // The URL holds the query: reloading runs it again.
    await page.reload();
    await results.getByRole('cell', { name: 'batch-worker' }).waitFor();

    // A bad query: the server's message and where it went wrong.
    const editor = page.getByLabel('SQL editor');
    await editor.click();
    await page.keyboard.press('ControlOrMeta+a');
    await page.keyboard.type('SELEC name FROM spans');
    await page.keyboard.press('Control+Enter');
    await page.getByRole('alert').getByText(/invalid_argument/).waitFor();
    assert.deepEqual(page.errors, []);
  }));
