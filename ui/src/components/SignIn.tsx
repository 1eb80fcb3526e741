import { useState, type FormEvent } from 'react';
import { ApiError, getJson } from '../api/client';
import { storeToken, type Session } from '../api/session';

/** Asks for a bearer token (one with the `query` scope) and checks it. */
export function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [checking, setChecking] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setChecking(true);
    setError(null);
    storeToken(token.trim());
    try {
      onSignedIn(await getJson<Session>('/api/v1/session'));
    } catch (e) {
      storeToken(null);
      setError(e instanceof ApiError ? e.message : String(e));
    } finally {
      setChecking(false);
    }
  }

  return (
    <form className="signin" onSubmit={submit} aria-label="Sign in">
      <h1>Sign in to Skein</h1>
      <p>
        This Skein checks bearer tokens. Paste a token with the <code>query</code> scope (made with{' '}
        <code>skein token create</code>); it is kept in this tab only.
      </p>
      <label>
        Token
        <input
          type="password"
          name="token"
          autoComplete="off"
          value={token}
          onChange={(e) => setToken(e.target.value)}
          required
        />
      </label>
      <button type="submit" disabled={checking || token.trim() === ''}>
        {checking ? 'Checking…' : 'Sign in'}
      </button>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
