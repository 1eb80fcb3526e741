// The one place the UI talks to Skein's HTTP API. Failures become ApiError
// carrying the server's own message, so every screen can show it. Every
// request carries the signed-in token, if any (a 401 asks for one), and the
// chosen tenant when Skein is multi-tenant without tokens.

import { storedTenant, storedToken, UNAUTHORIZED_EVENT } from './session';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
  }
}

async function failure(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body.error?.message) return new ApiError(body.error.message, response.status, body.error.code ?? 'error');
  } catch {
    // Not JSON: fall through to the raw text.
  }
  return new ApiError(text || response.statusText, response.status, 'http_' + response.status);
}

export async function request(path: string, init?: RequestInit): Promise<Response> {
  const headers = new Headers(init?.headers);
  const token = storedToken();
  if (token) headers.set('Authorization', `Bearer ${token}`);
  const tenant = storedTenant();
  if (tenant && !token) headers.set('X-Scope-OrgID', tenant);
  let response: Response;
  try {
    response = await fetch(path, { ...init, headers });
  } catch (e) {
    throw new ApiError(`cannot reach Skein: ${(e as Error).message}`, 0, 'network');
  }
  if (response.status === 401) window.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
  if (!response.ok) throw await failure(response);
  return response;
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await (await request(path, { signal })).json()) as T;
}

export function query(params: Record<string, string | string[] | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === '') continue;
    for (const v of Array.isArray(value) ? value : [value]) if (v !== '') search.append(key, v);
  }
  const text = search.toString();
  return text ? '?' + text : '';
}
