// Logs: search with the volume histogram, filter by severity and text,
// expand a record, follow its trace ID into the trace view, where the Logs
// panel lists the trace's records and a click selects a record's span.
// Needs `data.logs` from tests/integration/ui.rs: {traceId, spanId, service,
// errorBody, count}, records timestamped within the last hour.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { base, data, launch, screenshot, withPage } from './browser.mjs';

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

test('logs: histogram, severity filter, expand, into the trace and its span', () =>
  withPage(browser, 'logs-histogram-severity-filter-expand-in', async (page) => {
    assert.ok(data.logs, 'SKEIN_E2E_DATA has no "logs": tests/integration/ui.rs must load log records and describe them');
    const { traceId, spanId, service, errorBody, count } = data.logs;
    await page.goto(base + '/logs');
    const list = page.getByRole('list', { name: 'Log records' });
    const rows = list.getByTestId('log-row');
    await rows.first().waitFor();
    // The histogram counts every record in the range (the list shows a page).
    await page.getByTestId('log-volume').locator('canvas').first().waitFor();
    assert.equal(Number(await page.getByRole('region', { name: 'Log volume' }).getAttribute('data-total')), count);
    assert.ok((await rows.count()) <= Math.min(count, 100));
    await screenshot(page, 'logs');

    // Older pages: the range is pinned in the URL, "← Newest" goes back.
    if (count >= 2) {
      await page.goto(base + '/logs?limit=1');
      await rows.first().waitFor();
      await page.getByRole('button', { name: 'Older →' }).click();
      await page.waitForURL(/start=.*cursor=|cursor=.*start=/);
      await page.getByRole('button', { name: '← Newest' }).waitFor();
      await rows.first().waitFor();
      assert.equal(await rows.count(), 1);
      await page.getByRole('button', { name: '← Newest' }).click();
      await page.waitForURL((url) => !url.search.includes('cursor='));
      await page.goto(base + '/logs');
      await rows.first().waitFor();
    }

    // Minimum severity error: only error and fatal records remain.
    await page.getByLabel('Minimum severity').selectOption('error');
    await page.getByRole('button', { name: 'Find logs' }).click();
    await page.waitForURL(/severity=error/);
    // (The old list may still be on screen for a moment: wait for the new one.)
    await page.waitForFunction(() => {
      const all = [...document.querySelectorAll('[data-testid="log-row"]')];
      return all.length > 0 && all.every((r) => ['error', 'fatal'].includes(r.dataset.severity));
    });
    const bands = await rows.evaluateAll((all) => all.map((r) => r.dataset.severity));
    assert.ok(bands.length > 0 && bands.every((b) => b === 'error' || b === 'fatal'), bands.join());

    // Narrow to the body text: the record is there, and its service.
    await page.getByLabel('Body contains').fill(errorBody);
    await page.getByRole('button', { name: 'Find logs' }).click();
    await page.waitForURL(/q=/);
    await page.waitForFunction((text) => {
      const all = [...document.querySelectorAll('[data-testid="log-row"]')];
      return all.length > 0 && all.every((r) => r.textContent.includes(text));
    }, errorBody);
    const record = rows.filter({ hasText: errorBody }).first();
    assert.match(await record.textContent(), new RegExp(service));

    // And by the span it was logged in: the record stays.
    await page.getByLabel('Span ID').fill(spanId);
    await page.getByRole('button', { name: 'Find logs' }).click();
    await page.waitForURL(new RegExp(`span_id=${spanId}`));
    await page.waitForFunction((text) => {
      const all = [...document.querySelectorAll('[data-testid="log-row"]')];
      return all.length > 0 && all.every((r) => r.textContent.includes(text));
    }, errorBody);

    // Expand it: typed details and the IDs, the trace ID opens the trace.
    await record.getByRole('button', { expanded: false }).click();
    const detail = record.getByTestId('log-detail');
    await detail.waitFor();
    assert.equal(await record.getByRole('button', { expanded: true }).count(), 1);
    await detail.getByRole('heading', { name: /^Resource \(/ }).waitFor();
    await detail.getByRole('link', { name: traceId }).click();
    await page.waitForURL(new RegExp(`/trace/${traceId}$`));
    await page.getByRole('tree', { name: 'Spans' }).waitFor();

    // The Logs panel: the trace's records, oldest first.
    const toggle = page.getByRole('button', { name: /^Logs \(\d/ });
    await toggle.waitFor();
    const shown = Number((await toggle.textContent()).match(/\(([\d,]+)/)[1].replace(/,/g, ''));
    assert.ok(shown >= 1 && shown <= count, `${shown} of ${count}`);
    await toggle.click();
    await page.waitForURL(/logs=1/);
    const panel = page.getByRole('region', { name: 'Trace logs' });
    const traceLogs = panel.getByTestId('trace-log');
    await traceLogs.first().waitFor();
    await panel.getByText(errorBody).first().waitFor();

    // A record with a span ID selects that span, as a click on its row would.
    await panel.locator(`[data-log-span-id="${spanId}"]`).first().click();
    await page.waitForURL(new RegExp(`/trace/${traceId}\\?.*span=${spanId}`));
    const span = page.locator(`[data-span-id="${spanId}"]`);
    await span.waitFor();
    assert.equal(await span.getAttribute('aria-selected'), 'true');
    // The span's own logs are in its detail.
    const spanDetail = page.getByRole('complementary', { name: 'Span detail' });
    await spanDetail.getByTestId('span-log').first().waitFor();
    assert.ok((await spanDetail.getByTestId('span-log').count()) <= shown);
    await screenshot(page, 'trace-logs');

    // Back to the log screen with this trace's ID (and a range around it).
    await panel.getByRole('link', { name: 'Search these logs' }).click();
    await page.waitForURL(new RegExp(`/logs\\?trace_id=${traceId}&start=`));
    await rows.first().waitFor();
    assert.equal(await page.getByLabel('Trace ID').inputValue(), traceId);
    await rows.filter({ hasText: errorBody }).first().waitFor();
    assert.deepEqual(page.errors, []);
  }));
