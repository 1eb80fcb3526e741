// A multi-tenant Skein without tokens: the header offers a choice of
// tenant, sent as X-Scope-OrgID; each tenant's lists and traces are its own.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { base, data, launch, screenshot, withPage } from '../e2e/browser.mjs';

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

const traces = (page) => page.getByRole('table', { name: 'Traces' });
const rootsOf = (page, service) => traces(page).getByRole('link', { name: new RegExp(`^${service}: `) });

test('switch tenants: each sees only its own traces', () =>
  withPage(browser, 'switch-tenants', async (page) => {
    await page.goto(base + '/');
    const name = page.getByLabel('Tenant name');
    assert.equal(await name.inputValue(), 'default');
    await rootsOf(page, data.defaultService).first().waitFor();
    assert.equal(await rootsOf(page, data.tenantService).count(), 0);

    await name.fill(data.tenant);
    await page.getByRole('button', { name: 'Switch' }).click();
    await rootsOf(page, data.tenantService).first().waitFor();
    assert.equal(await page.getByLabel('Tenant name').inputValue(), data.tenant);
    assert.equal(await rootsOf(page, data.defaultService).count(), 0);
    await screenshot(page, 'tenant-switch');

    // The choice lasts as long as the tab; the other tenant's trace is not here.
    await page.goto(`${base}/trace/${data.defaultTraceId}`);
    await page.getByText(/not found/i).first().waitFor();
    await page.goto(`${base}/trace/${data.tenantTraceId}`);
    await page.getByText(data.tenantService).first().waitFor();

    // A name that cannot be a tenant is not sent.
    await page.getByLabel('Tenant name').fill('no such/tenant');
    assert.equal(await page.getByRole('button', { name: 'Switch' }).isDisabled(), true);
    assert.deepEqual(page.errors, []);
  }));
