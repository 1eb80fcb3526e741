import { lazy, Suspense } from 'react';
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
const ComparePage = lazy(() => import('./pages/ComparePage').then((m) => ({ default: m.ComparePage })));

const NAV: [string, string][] = [
  ['/', 'Search'],
  ['/services', 'Services'],
  ['/map', 'Service map'],
  ['/compare', 'Compare'],
  ['/explore', 'Metrics'],
  ['/sql', 'SQL'],
];

export function App() {
  const location = useLocation();
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
        <ThemeToggle />
      </header>
      <main>
        <ErrorBoundary resetKey={location.pathname + location.search}>
          <Suspense fallback={<Loading what="screen" />}>
            <Routes>
              <Route path="/" element={<SearchPage />} />
              <Route path="/trace/:traceId" element={<TracePage />} />
              <Route path="/compare" element={<ComparePage />} />
              <Route path="/services" element={<ServicesPage />} />
              <Route path="/map" element={<ServiceMapPage />} />
              <Route path="/explore" element={<MetricsPage />} />
              <Route path="/sql" element={<SqlPage />} />
              <Route path="*" element={<Empty>No such page.</Empty>} />
            </Routes>
          </Suspense>
        </ErrorBoundary>
      </main>
    </div>
  );
}
