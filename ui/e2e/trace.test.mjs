// Search → open a trace → open a span → follow its link into another trace
// → collapse and expand there → open a failing span → back; and a
// 20,000-span trace that opens as a window of its top levels, loads a
// subtree when it is opened, and finds and opens spans it has not loaded.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { base, data, launch, screenshot, withPage } from './browser.mjs';

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

test('search, open a trace, follow a span link, expand, back', () =>
  withPage(browser, 'search-open-a-trace-follow-a-span-link-e', async (page) => {
    await page.goto(base + '/');
    await page.getByRole('table', { name: 'Traces' }).waitFor();
    await page.getByTestId('duration-scatter').locator('canvas').first().waitFor();
    await screenshot(page, 'search');

    // A click on the scatter plot opens the trace of the nearest point.
    const plot = page.getByTestId('duration-scatter').locator('.u-over');
    await plot.hover();
    await plot.click();
    await page.waitForURL(/\/trace\/[0-9a-f]{32}$/);
    await page.getByRole('tree', { name: 'Spans' }).waitFor();
    await page.goBack();
    await page.getByRole('table', { name: 'Traces' }).waitFor();

    // Pages: the next page holds other traces, its URL pins the range.
    await page.goto(base + '/?limit=2');
    const traces = page.getByRole('table', { name: 'Traces' });
    await traces.locator('tbody tr').first().waitFor();
    const firstPage = await traces.locator('.trace-link').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
    assert.equal(firstPage.length, 2);
    await page.getByRole('button', { name: 'Next page →' }).click();
    await page.waitForURL(/cursor=/);
    await page.waitForFunction(
      (first) => document.querySelector('table[aria-label="Traces"] .trace-link')?.getAttribute('href') !== first,
      firstPage[0],
    );
    const secondPage = await traces.locator('.trace-link').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
    assert.ok(secondPage.every((href) => !firstPage.includes(href)), `${firstPage} / ${secondPage}`);
    await page.getByRole('button', { name: '← First page' }).click();
    await page.waitForURL((url) => !url.search.includes('cursor='));
    await page.goto(base + '/');
    await traces.locator('tbody tr').first().waitFor();

    // Narrow the search with the form: the consumer span that carries a link.
    await page.getByLabel('Operation').fill('process order');
    await page.getByRole('button', { name: 'Find traces' }).click();
    await page.waitForURL(/name=process\+order/);
    const result = page.getByRole('link', { name: /process order/ }).first();
    await result.waitFor();
    assert.equal(await page.getByRole('link', { name: /GET \/cart/ }).count(), 0, 'only matching traces are listed');
    await page.locator(`a[href="/trace/${data.linkedFrom.traceId}"]`).click();

    // Open the span; its detail shows the link, typed attributes included.
    await page.waitForURL(new RegExp(`/trace/${data.linkedFrom.traceId}`));
    await page.locator(`[data-span-id="${data.linkedFrom.spanId}"]`).click();
    const detail = page.getByRole('complementary', { name: 'Span detail' });
    await detail.getByText('Links (1)').waitFor();
    await detail.getByText('async follow-up').waitFor();
    await screenshot(page, 'trace-link');

    // Follow the link into the other trace: the linked span is selected.
    await detail.locator('a.span-link').click();
    await page.waitForURL(new RegExp(`/trace/${data.linkTarget.traceId}\\?span=${data.linkTarget.spanId}`));
    const target = page.locator(`[data-span-id="${data.linkTarget.spanId}"]`);
    await target.waitFor();
    assert.equal(await target.getAttribute('aria-selected'), 'true');
    await detail.getByText('http.route').waitFor();
    // The other direction: the target knows which span links to it.
    await detail.getByText('Linked from (1)').waitFor();
    assert.equal(
      await detail.locator('a.linked-from').getAttribute('href'),
      `/trace/${data.linkedFrom.traceId}?span=${data.linkedFrom.spanId}`,
    );

    // Collapse the root's subtree, then expand it again. Counts are waited
    // for: the tree re-renders after the click, not during it.
    const rows = page.getByRole('treeitem');
    const rowsAre = (n) => page.waitForFunction((n) => document.querySelectorAll('[role="treeitem"]').length === n, n);
    await rowsAre(4);
    await target.getByRole('button', { name: 'Collapse' }).click();
    await rowsAre(1);
    // Collapsed subtrees are kept in the URL: a reload shows the same tree.
    assert.match(page.url(), new RegExp(`toggled=${data.linkTarget.spanId}`));
    await page.reload();
    await target.getByRole('button', { name: /Expand 2 children/ }).waitFor();
    assert.equal(await rows.count(), 1);
    await target.getByRole('button', { name: /Expand 2 children/ }).click();
    await rowsAre(4);

    // Open the failing span: its status and exception event are shown.
    await page.getByRole('treeitem', { name: /charge card/ }).click();
    await detail.getByTestId('span-status').getByText('error: payment failed').waitFor();
    await detail.getByText('exception').first().waitFor();
    await screenshot(page, 'trace');
    // The trace as OTLP/JSON, ready to re-export.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download OTLP/JSON' }).click(),
    ]);
    const otlp = JSON.parse(readFileSync(await download.path(), 'utf8'));
    assert.equal(otlp.resourceSpans[0].scopeSpans[0].spans.length, 4);
    await page.getByRole('button', { name: 'Toggle dark theme' }).click();
    assert.equal(await page.locator('html').getAttribute('data-theme'), 'dark');
    await screenshot(page, 'trace-dark');

    // Back: the linking trace, with its span still open.
    await page.goBack();
    await page.waitForURL(new RegExp(`/trace/${data.linkedFrom.traceId}\\?span=${data.linkedFrom.spanId}`));
    await detail.getByText('Links (1)').waitFor();
    assert.deepEqual(page.errors, []);
  }));

test('a 20,000-span trace opens as a window and loads subtrees as they open', () =>
  withPage(browser, 'a-20-000-span-trace-opens-as-a-window', async (page) => {
    // Long tasks are recorded for information (a benchmark, not an assertion).
    await page.addInitScript(() => {
      window.__longTasks = [];
      new PerformanceObserver((list) => window.__longTasks.push(...list.getEntries().map((e) => e.duration))).observe({
        type: 'longtask',
        buffered: true,
      });
    });
    const big = data.bigTrace;
    const count = (n) => n.toLocaleString('en-US');
    await page.goto(`${base}/trace/${big.traceId}`);
    await page.getByText(`${count(big.spanCount)} spans`, { exact: true }).waitFor();
    // Only the levels that fit the window come: the root and its chunks.
    const loaded = page.getByTestId('loaded-spans');
    await loaded.getByText(count(1 + big.children), { exact: true }).waitFor();
    // The server's summary covers the whole trace.
    await page.getByText(`${count(big.errorCount)} spans where errors start`).waitFor();
    const rows = page.getByRole('treeitem');
    await rows.first().waitFor();
    assert.ok((await rows.count()) < 200, 'only the rows on screen are in the DOM');

    // Opening the last chunk loads its items.
    const chunk = page.locator(`[data-span-id="${big.lastChunkId}"]`);
    await chunk.getByRole('button', { name: `Expand ${big.grandchildren} children` }).click();
    await loaded.getByText(count(1 + big.children + big.grandchildren), { exact: true }).waitFor();

    // Keyboard: focus the waterfall, End selects and shows the last span.
    await page.getByRole('tree', { name: 'Spans' }).focus();
    await page.keyboard.press('Home');
    await page.keyboard.press('End');
    const last = page.locator(`[data-span-id="${big.lastSpanId}"]`);
    await last.waitFor();
    assert.equal(await last.getAttribute('aria-selected'), 'true');
    assert.ok(await last.isVisible());
    const detail = page.getByRole('complementary', { name: 'Span detail' });
    await detail.getByRole('heading', { name: big.lastSpanName }).waitFor();
    // Clock-skew adjustment is off until asked for, and says what it moved
    // (nothing here: every item fits inside its chunk).
    await page.getByLabel('Adjust clock skew').click();
    await page.waitForURL(/skew=1/);
    await page.getByText('(0 spans shifted)').waitFor();

    // Find asks the server, so spans of chunks not loaded are found too
    // (item 0.99 and items 0.990 to 0.998), and Enter opens the first.
    await page.getByLabel('Find spans').fill('item 0.99');
    await page.getByTestId('find-count').getByText('– / 10').waitFor();
    await page.getByLabel('Find spans').press('Enter');
    await page.getByTestId('find-count').getByText('1 / 10').waitFor();
    await detail.getByRole('heading', { name: 'item 0.99', exact: true }).waitFor();
    // The row renders once its chunk has loaded, which may come after the detail.
    await page.locator('.span-row.selected.hit').waitFor();

    // A span where errors start, named by the summary, opens in place.
    await page.getByRole('button', { name: `${big.itemService}: ${big.firstErrorName}`, exact: true }).click();
    await detail.getByRole('heading', { name: big.firstErrorName, exact: true }).waitFor();
    await page.waitForURL(/span=/);
    // The critical path comes from the server too.
    await page.getByLabel('Critical path').click();
    await page.locator('.span-row.critical').first().waitFor();
    // Loaded: the first window, the opened chunk, the 10 spans found and the
    // error's span (their ancestors were loaded already); the critical path
    // only highlights.
    await loaded.getByText(count(1 + big.children + big.grandchildren + 10 + 1), { exact: true }).waitFor();
    await screenshot(page, 'trace-20k');

    // A link to a span deep in a subtree not loaded opens the trace there.
    await page.goto(`${base}/trace/${big.traceId}?span=${big.lastSpanId}`);
    await detail.getByRole('heading', { name: big.lastSpanName }).waitFor();
    assert.equal(await last.getAttribute('aria-selected'), 'true');
    const longTasks = await page.evaluate(() => window.__longTasks);
    console.log(`20k-span trace: ${longTasks.length} long tasks, longest ${Math.max(0, ...longTasks).toFixed(0)} ms`);
    assert.deepEqual(page.errors, []);
  }));
