import { NavLink, Route, Routes } from 'react-router-dom';
import { ThemeToggle } from './components/ThemeToggle';
import { SearchPage } from './pages/SearchPage';
import { TracePage } from './pages/trace/TracePage';
import { SqlPage } from './pages/SqlPage';
import { Empty } from './components/Status';

const NAV: [string, string][] = [
  ['/', 'Search'],
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
          <Route path="/sql" element={<SqlPage />} />
          <Route path="*" element={<Empty>No such page.</Empty>} />
        </Routes>
      </main>
    </div>
  );
}
