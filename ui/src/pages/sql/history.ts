// The last queries run in this browser, newest first.
const KEY = 'skein.sql.history';
const KEEP = 50;

export function loadHistory(): string[] {
  try {
    const value = JSON.parse(localStorage.getItem(KEY) ?? '[]');
    return Array.isArray(value) ? value.filter((v) => typeof v === 'string') : [];
  } catch {
    return [];
  }
}

export function remember(sql: string): string[] {
  const next = [sql, ...loadHistory().filter((q) => q !== sql)].slice(0, KEEP);
  localStorage.setItem(KEY, JSON.stringify(next));
  return next;
}
