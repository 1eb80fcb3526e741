import { useMemo, useState } from 'react';
import type { EditorView } from '@codemirror/view';
import { useSearchParams } from 'react-router-dom';
import { ApiError, request } from '../api/client';
import type { SqlResult } from '../api/types';
import { ResultTable } from '../components/ResultTable';
import { ErrorBox, Loading } from '../components/Status';
import { formatCount } from '../lib/format';
import { useApi } from '../lib/useApi';
import { EXAMPLES } from './sql/examples';
import { loadHistory, remember } from './sql/history';
import { QuickChart, chartColumns } from './sql/QuickChart';
import { SqlEditor, moveCursor } from './sql/SqlEditor';
import { saveBlob } from '../lib/download';

const DEFAULT_SQL = 'SELECT service_name, count(*) AS spans\nFROM spans\nGROUP BY service_name\nORDER BY spans DESC';

async function runSql(sql: string, format: 'json' | 'csv' | 'ndjson', signal?: AbortSignal): Promise<Response> {
  return request(`/api/v1/sql${format === 'json' ? '' : `?format=${format}`}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sql }),
    signal,
  });
}

/** Tables and their columns, for the editor's completion. */
async function loadSchema(signal: AbortSignal): Promise<Record<string, string[]>> {
  const sql =
    "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position";
  const result = (await (await runSql(sql, 'json', signal)).json()) as SqlResult;
  const schema: Record<string, string[]> = {};
  for (const [table, column] of result.rows as [string, string][]) (schema[table] ??= []).push(column);
  return schema;
}

/** `Line: 1, Column: 8` in DataFusion's parser messages. */
export function errorPosition(message: string): { line: number; column: number } | null {
  const match = /Line: (\d+), Column: (\d+)/.exec(message);
  return match ? { line: Number(match[1]), column: Number(match[2]) } : null;
}

export function SqlPage() {
  const [params, setParams] = useSearchParams();
  const ran = params.get('q');
  const [text, setText] = useState(ran ?? DEFAULT_SQL);
  const [history, setHistory] = useState(loadHistory);
  const [showChart, setShowChart] = useState(false);
  const [downloadError, setDownloadError] = useState<unknown>(null);
  const [editor, setEditor] = useState<EditorView | null>(null);
  const schema = useApi('schema', loadSchema);
  const schemaValue = useMemo(() => (schema.state === 'done' ? schema.data : {}), [schema]);

  // The query in the URL is the one that ran: back/forward re-runs it and
  // puts it in the editor.
  const [shown, setShown] = useState(ran);
  if (ran !== shown) {
    setShown(ran);
    if (ran !== null) setText(ran);
  }
  const result = useApi(ran === null ? null : ran + '#' + (params.get('t') ?? ''), async (signal) => {
    const response = await runSql(ran ?? '', 'json', signal);
    return (await response.json()) as SqlResult;
  });
  const run = (sql = text) => {
    setHistory(remember(sql));
    setParams({ q: sql, t: String(Date.now()) });
  };
  const error = result.state === 'error' ? result.error : null;
  const position = error instanceof ApiError ? errorPosition(error.message) : null;

  const download = async (format: 'csv' | 'ndjson') => {
    setDownloadError(null);
    try {
      const blob = await (await runSql(ran ?? text, format)).blob();
      saveBlob(blob, `skein-result.${format === 'csv' ? 'csv' : 'ndjson'}`);
    } catch (e) {
      setDownloadError(e);
    }
  };

  return (
    <div className="sql-page">
      <div className="sql-top">
        <div className="sql-main">
          <SqlEditor value={text} onChange={setText} onRun={() => run()} schema={schemaValue} onView={setEditor} />
          <div className="sql-actions">
            <button className="primary" onClick={() => run()}>
              Run <small>Ctrl+Enter</small>
            </button>
            <select
              aria-label="Example queries"
              value=""
              onChange={(e) => e.target.value !== '' && setText(EXAMPLES[Number(e.target.value)].sql)}
            >
              <option value="">Examples from the README…</option>
              {EXAMPLES.map((ex, i) => (
                <option key={i} value={i}>
                  {ex.title}
                </option>
              ))}
            </select>
            {result.state === 'done' && (
              <>
                <button onClick={() => download('csv')}>Download CSV</button>
                <button onClick={() => download('ndjson')}>Download NDJSON</button>
                {chartColumns(result.data.columns) && (
                  <label className="check">
                    <input type="checkbox" checked={showChart} onChange={(e) => setShowChart(e.target.checked)} />
                    Chart
                  </label>
                )}
              </>
            )}
          </div>
        </div>
        <aside className="sql-history" aria-label="Query history">
          <h4>History</h4>
          {history.length === 0 && <p className="muted">Queries you run appear here.</p>}
          <ul>
            {history.map((q) => (
              <li key={q}>
                <button className="link" title={q} onClick={() => setText(q)}>
                  {q.replace(/\s+/g, ' ').slice(0, 90)}
                </button>
              </li>
            ))}
          </ul>
        </aside>
      </div>
      {downloadError !== null && <ErrorBox error={downloadError} />}
      {ran === null && <p className="muted">Write a query over spans, metrics or the metric views and run it.</p>}
      {result.state === 'loading' && ran !== null && <Loading what="result" />}
      {error !== null && (
        <>
          <ErrorBox error={error} />
          {position && editor && (
            <button className="link" onClick={() => moveCursor(editor, position.line, position.column)}>
              Go to line {position.line}, column {position.column}
            </button>
          )}
        </>
      )}
      {result.state === 'done' && (
        <>
          <p className="muted">{formatCount(result.data.rowCount)} rows</p>
          {showChart && <QuickChart columns={result.data.columns} rows={result.data.rows} />}
          <ResultTable columns={result.data.columns} rows={result.data.rows} />
        </>
      )}
    </div>
  );
}
