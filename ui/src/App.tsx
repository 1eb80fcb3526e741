import { NavLink, Route, Routes } from 'react-router-dom';
import { ThemeToggle } from './components/ThemeToggle';
import { SearchPage } from './pages/SearchPage';
import { TracePage } from './pages/trace/TracePage';
import { SqlPage } from './pages/SqlPage';
import { ServicesPage } from './pages/ServicesPage';
import { ServiceMapPage } from './pages/ServiceMapPage';
import { MetricsPage } from './pages/MetricsPage';
import { ComparePage } from './pages/ComparePage';
import { Empty } from './components/Status';

const NAV: [string, string][] = [
  ['/', 'Search'],
  ['/services', 'Services'],
  ['/map', 'Service map'],
  ['/compare', 'Compare'],
  ['/explore', 'Metrics'],
  ['/sql', 'SQL'],
];

export function App() {
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
      </main>
    </div>
  );
}
