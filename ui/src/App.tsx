import { lazy, Suspense, useEffect, useState } from 'react';
import { ApiError, getJson } from './api/client';
import { storeToken, UNAUTHORIZED_EVENT, type Session } from './api/session';
import { SignIn } from './components/SignIn';
import { TenantSwitch } from './components/TenantSwitch';
import { NavLink, Route, Routes, useLocation } from 'react-router-dom';
import { ErrorBoundary } from './components/ErrorBoundary';
import { ThemeToggle } from './components/ThemeToggle';
import { SearchPage } from './pages/SearchPage';
import { TracePage } from './pages/trace/TracePage';
import { Empty, Loading } from './components/Status';

// The landing screens load with the app; the others (the SQL editor, charts
// of metrics, the graph layout) load when first opened.
const SqlPage = lazy(() => import('./pages/SqlPage').then((m) => ({ default: m.SqlPage })));
const ServicesPage = lazy(() => import('./pages/ServicesPage').then((m) => ({ default: m.ServicesPage })));
const ServiceMapPage = lazy(() => import('./pages/ServiceMapPage').then((m) => ({ default: m.ServiceMapPage })));
const MetricsPage = lazy(() => import('./pages/MetricsPage').then((m) => ({ default: m.MetricsPage })));
const LogsPage = lazy(() => import('./pages/LogsPage').then((m) => ({ default: m.LogsPage })));
const ComparePage = lazy(() => import('./pages/ComparePage').then((m) => ({ default: m.ComparePage })));

const NAV: [string, string][] = [
  ['/', 'Search'],
  ['/logs', 'Logs'],
  ['/services', 'Services'],
  ['/map', 'Service map'],
  ['/compare', 'Compare'],
  ['/explore', 'Metrics'],
  ['/sql', 'SQL'],
];

/** The caller's session: loading, known, or a sign-in to show. */
type SessionState = { state: 'loading' } | { state: 'ready'; session: Session } | { state: 'signin' };

function useSession(): [SessionState, (state: SessionState) => void] {
  const [session, setSession] = useState<SessionState>({ state: 'loading' });
  useEffect(() => {
    const controller = new AbortController();
    getJson<Session>('/api/v1/session', controller.signal)
      .then((s) => setSession({ state: 'ready', session: s }))
      .catch((e: unknown) => {
        if (e instanceof ApiError && e.status === 401) setSession({ state: 'signin' });
        // Anything else (server down, old server): let the screens show it.
        else if (!controller.signal.aborted) setSession({ state: 'ready', session: { auth: false } });
      });
    const unauthorized = () => setSession({ state: 'signin' });
    window.addEventListener(UNAUTHORIZED_EVENT, unauthorized);
    return () => {
      controller.abort();
      window.removeEventListener(UNAUTHORIZED_EVENT, unauthorized);
    };
  }, []);
  return [session, setSession];
}

export function App() {
  const location = useLocation();
  const [session, setSession] = useSession();
  const signedIn = session.state === 'ready' && session.session.auth ? session.session : null;
  const chosen =
    session.state === 'ready' && !session.session.auth && session.session.multi_tenant ? session.session : null;
  return (
    <div className="app">
      <header className="topbar">
        <span className="brand">Skein</span>
        <nav>
          {NAV.map(([to, label]) => (
            <NavLink key={to} to={to} end={to === '/'}>
              {label}
            </NavLink>
          ))}
        </nav>
        {signedIn && (
          <span className="session" title={`scopes: ${(signedIn.scopes ?? []).join(', ')}`}>
            tenant <strong>{signedIn.tenant}</strong>
            <button
              type="button"
              onClick={() => {
                storeToken(null);
                setSession({ state: 'signin' });
              }}
            >
              Sign out
            </button>
          </span>
        )}
        {chosen && <TenantSwitch tenant={chosen.tenant ?? 'default'} />}
        <ThemeToggle />
      </header>
      <main>
        {session.state === 'signin' ? (
          <SignIn onSignedIn={(s) => setSession({ state: 'ready', session: s })} />
        ) : session.state === 'loading' ? (
          <Loading what="session" />
        ) : (
        <ErrorBoundary resetKey={location.pathname + location.search}>
          <Suspense fallback={<Loading what="screen" />}>
            <Routes>
              <Route path="/" element={<SearchPage />} />
              <Route path="/trace/:traceId" element={<TracePage />} />
              <Route path="/logs" element={<LogsPage />} />
              <Route path="/compare" element={<ComparePage />} />
              <Route path="/services" element={<ServicesPage />} />
              <Route path="/map" element={<ServiceMapPage />} />
              <Route path="/explore" element={<MetricsPage />} />
              <Route path="/sql" element={<SqlPage />} />
              <Route path="*" element={<Empty>No such page.</Empty>} />
            </Routes>
          </Suspense>
        </ErrorBoundary>
        )}
      </main>
    </div>
  );
}
