// The bearer token the UI signs in with. Kept in session storage: it lasts
// as long as the tab and is never written to disk by the UI.

const TOKEN_KEY = 'skein.token';
// The tenant chosen when Skein is multi-tenant without tokens.
const TENANT_KEY = 'skein.tenant';

/** Fired when the API answers 401, so the app can ask for a token. */
export const UNAUTHORIZED_EVENT = 'skein:unauthorized';

/** What `GET /api/v1/session` says about the caller. */
export interface Session {
  auth: boolean;
  tenant?: string;
  scopes?: string[];
  token_name?: string | null;
  /** Without tokens: whether the `X-Scope-OrgID` header chooses the tenant. */
  multi_tenant?: boolean;
}

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage disabled: the token lives only until the next request fails.
  }
}

export function storedTenant(): string | null {
  try {
    return sessionStorage.getItem(TENANT_KEY);
  } catch {
    return null;
  }
}

export function storeTenant(tenant: string | null): void {
  try {
    if (tenant) sessionStorage.setItem(TENANT_KEY, tenant);
    else sessionStorage.removeItem(TENANT_KEY);
  } catch {
    // Storage disabled: the default tenant it is.
  }
}
