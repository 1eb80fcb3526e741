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

/** A value kept for the tab; `null` when absent or storage is disabled. */
function stored(key: string): string | null {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

/** Keeps `value` for the tab (`null` forgets it). With storage disabled it
 *  is not kept: the token lasts until the next request fails, the tenant is
 *  the default one. */
function store(key: string, value: string | null): void {
  try {
    if (value) sessionStorage.setItem(key, value);
    else sessionStorage.removeItem(key);
  } catch {
    // Storage disabled: nothing to keep it in.
  }
}

export const storedToken = (): string | null => stored(TOKEN_KEY);
export const storeToken = (token: string | null): void => store(TOKEN_KEY, token);
export const storedTenant = (): string | null => stored(TENANT_KEY);
export const storeTenant = (tenant: string | null): void => store(TENANT_KEY, tenant);
