import type { ReactNode } from 'react';
import { ApiError } from '../api/client';

/** A failed request, with the server's own message and code. */
export function ErrorBox({ error }: { error: unknown }) {
  const api = error instanceof ApiError ? error : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <div className="error-box" role="alert">
      <strong>{api ? `${api.status || 'network'} ${api.code}` : 'error'}</strong>
      <pre>{message}</pre>
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <div className="loading" role="status">
      Loading {what}…
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}
