// Services, service map, metrics explorer and trace comparison render the
// loaded data; an exemplar opens its span (here: a trace the metrics script
// never exported, so the trace view shows the server's "not found").
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { base, data, launch, screenshot, withPage } from './browser.mjs';

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

test('services: RED table and charts from spans', () =>
  withPage(browser, 'services-red-table-and-charts-from-spans', async (page) => {
    await page.goto(base + '/services');
    const table = page.getByRole('table', { name: 'Operations' });
    await table.getByRole('cell', { name: 'GET /cart/0' }).first().waitFor();
    for (const id of ['red-rate', 'red-errors', 'red-latency']) await page.getByTestId(id).locator('canvas').first().waitFor();
    // Choosing a service narrows the table and keeps the choice in the URL.
    await table.getByRole('button', { name: 'item-store' }).first().click();
    await page.waitForURL(/service=item-store/);
    await page.getByRole('heading', { name: /item-store: item/ }).waitFor();
    assert.equal(await table.getByRole('button', { name: 'checkout' }).count(), 0);
    await screenshot(page, 'services');
    await page.goBack();
    await table.getByRole('button', { name: 'checkout' }).first().waitFor();

    // Click through to the traces of an operation.
    await table.getByRole('row', { name: /checkout process order/ }).click();
    await page.getByRole('link', { name: 'matching traces →' }).click();
    await page.waitForURL(/service=checkout&name=process\+order/);
    await page.getByRole('table', { name: 'Traces' }).getByRole('link', { name: 'checkout: process order' }).first().waitFor();
    assert.deepEqual(page.errors, []);
  }));

test('service map: the batch-worker → item-store edge', () =>
  withPage(browser, 'service-map-the-batch-worker-item-store-', async (page) => {
    await page.goto(base + '/map');
    await page.getByRole('img', { name: 'Service map' }).waitFor();
    const edge = page.getByTestId('map-edge').filter({ hasText: /20k calls/ });
    await edge.waitFor();
    assert.match(await edge.textContent(), /0\.4% err/);
    assert.ok((await page.getByTestId('map-node').count()) >= 4);
    await screenshot(page, 'service-map');
    await page.getByTestId('map-node').filter({ hasText: 'item-store' }).click();
    await page.waitForURL(/\/services\?service=item-store/);
    assert.deepEqual(page.errors, []);
  }));

test('metrics: catalog, quantile chart with exemplars, series labels', () =>
  withPage(browser, 'metrics-catalog-quantile-chart-with-exem', async (page) => {
    await page.goto(base + '/explore');
    await page.getByLabel('Search metrics').fill('server.dur');
    await page.getByRole('button', { name: new RegExp(data.metric) }).click();
    await page.waitForURL(/metric=http\.server\.duration/);
    const chart = page.getByTestId('metric-chart');
    await chart.locator('canvas').first().waitFor();
    assert.ok(Number(await chart.getAttribute('data-points')) > 0);
    assert.ok(Number(await chart.getAttribute('data-exemplars')) > 0);
    await page.getByLabel('Group by').selectOption('http.route');
    await page.waitForURL(/group=http\.route/);
    await chart.getByText(/http\.route=\/cart/).first().waitFor();
    const seriesTable = page.getByRole('table', { name: 'Series' });
    await seriesTable.getByText('service.name=shop').first().waitFor();
    await screenshot(page, 'metrics');

    // A label of the series list narrows the chart, its exemplars and the
    // list to the series with it; clearing the matchers brings them back.
    const rows = seriesTable.getByRole('row');
    const before = await rows.count();
    const chip = seriesTable.getByRole('button', { name: /^http\.route=/ }).first();
    const label = await chip.innerText();
    await chip.click();
    await page.waitForURL(/match=http\.route/);
    // The field shows the URL's matchers once the screen re-renders.
    await page.waitForFunction((v) => document.querySelector('input[aria-label="Label matchers"]')?.value === v, label);
    // Waited for: until the list reloads it still shows every series.
    await page.waitForFunction((v) => {
      const chips = [...document.querySelectorAll('table[aria-label="Series"] button.label-chip')];
      const routes = chips.filter((b) => b.textContent.startsWith('http.route='));
      return routes.length > 0 && routes.every((b) => b.textContent === v);
    }, label);
    const narrowed = await rows.count();
    assert.ok(narrowed > 0 && narrowed <= before, `${narrowed} of ${before} series`);
    await page.getByLabel('Label matchers').fill('');
    await page.getByLabel('Label matchers').press('Enter');
    await page.waitForURL((url) => !url.searchParams.has('match'));

    // An exemplar opens its span; that trace was never exported, so the
    // server's message is shown instead of a blank page.
    await chart.getByText('Exemplars', { exact: true }).click();
    await chart.getByRole('link').first().click();
    await page.waitForURL(/\/trace\/[0-9a-f]{32}\?span=[0-9a-f]{16}/);
    await page.getByRole('alert').getByText(/not found/).waitFor();
    assert.deepEqual(page.errors, []);
  }));

test('compare: two traces by operation', () =>
  withPage(browser, 'compare-two-traces-by-operation', async (page) => {
    await page.goto(`${base}/trace/${data.linkTarget.traceId}`);
    await page.getByRole('link', { name: 'Compare…' }).click();
    await page.getByLabel('Trace B').fill(data.bigTrace.traceId);
    await page.getByRole('button', { name: 'Compare' }).click();
    const ops = page.getByRole('table', { name: 'Operations compared' });
    await ops.getByText('only in B').first().waitFor();
    await ops.getByText('only in A').first().waitFor();
    await screenshot(page, 'compare');
    assert.deepEqual(page.errors, []);
  }));
