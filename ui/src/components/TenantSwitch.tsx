// Without tokens, a multi-tenant Skein serves the tenant the X-Scope-OrgID
// header names: this picks it for the tab. Switching reloads the page, so
// every screen asks again as the new tenant.
import { useState } from 'react';
import { storeTenant } from '../api/session';

const TENANT_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function TenantSwitch({ tenant }: { tenant: string }) {
  const [draft, setDraft] = useState(tenant);
  const valid = TENANT_NAME.test(draft);
  return (
    <form
      className="session"
      aria-label="Tenant"
      onSubmit={(e) => {
        e.preventDefault();
        if (!valid || draft === tenant) return;
        storeTenant(draft === 'default' ? null : draft);
        window.location.reload();
      }}
    >
      <label>
        tenant{' '}
        <input
          aria-label="Tenant name"
          value={draft}
          size={12}
          aria-invalid={!valid}
          title="letters, digits, '-' and '_'"
          onChange={(e) => setDraft(e.target.value.trim())}
        />
      </label>
      <button type="submit" disabled={!valid || draft === tenant}>
        Switch
      </button>
    </form>
  );
}
