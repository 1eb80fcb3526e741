import { useMemo, useState } from 'react';
import { Link } from 'react-router-dom';
import {
  flexRender,
  getCoreRowModel,
  getSortedRowModel,
  useReactTable,
  type ColumnDef,
  type SortingState,
} from '@tanstack/react-table';
import type { SqlColumn } from '../api/types';
import { formatCount } from '../lib/format';
import { useVirtualRows } from '../lib/useVirtualRows';

const ROW_HEIGHT = 26;
const TRACE_ID = /^[0-9a-f]{32}$/;

/** Is this column numeric in Arrow terms (Int64, Float64, UInt32, Decimal…)? */
export function isNumeric(type: string): boolean {
  return /^(U?Int\d+|Float\d+|Decimal)/.test(type);
}

/** A cell as text; trace IDs become links to the trace. */
function Cell({ value, column }: { value: unknown; column: SqlColumn }) {
  if (value === null || value === undefined) return <span className="null">NULL</span>;
  if (typeof value === 'string' && TRACE_ID.test(value) && /trace/i.test(column.name)) {
    return (
      <Link to={`/trace/${value}`} className="mono">
        {value}
      </Link>
    );
  }
  if (typeof value === 'object') return <span className="mono">{JSON.stringify(value)}</span>;
  return <>{String(value)}</>;
}

/** SQL results: sortable, typed headers, only the rows on screen in the DOM. */
export function ResultTable({ columns, rows }: { columns: SqlColumn[]; rows: unknown[][] }) {
  const [sorting, setSorting] = useState<SortingState>([]);
  const defs = useMemo<ColumnDef<unknown[]>[]>(
    () =>
      columns.map((c, i) => ({
        id: String(i),
        accessorFn: (row) => row[i],
        header: () => (
          <span title={c.type}>
            {c.name} <small className="type-tag">{c.type}</small>
          </span>
        ),
        cell: (info) => <Cell value={info.getValue()} column={c} />,
        sortUndefined: 'last',
      })),
    [columns],
  );
  const table = useReactTable({
    data: rows,
    columns: defs,
    state: { sorting },
    onSortingChange: setSorting,
    getCoreRowModel: getCoreRowModel(),
    getSortedRowModel: getSortedRowModel(),
  });
  const tableRows = table.getRowModel().rows;
  const { scroller, virtual } = useVirtualRows(tableRows.length, ROW_HEIGHT, 15);
  const items = virtual.getVirtualItems();
  const padTop = items[0]?.start ?? 0;
  const padBottom = virtual.getTotalSize() - (items[items.length - 1]?.end ?? 0);
  return (
    <div className="result-table" ref={scroller} data-testid="sql-results">
      <table>
        <thead>
          {table.getHeaderGroups().map((group) => (
            <tr key={group.id}>
              {group.headers.map((h) => (
                <th
                  key={h.id}
                  className={isNumeric(columns[Number(h.id)].type) ? 'num' : undefined}
                  onClick={h.column.getToggleSortingHandler()}
                >
                  {flexRender(h.column.columnDef.header, h.getContext())}
                  {{ asc: ' ▲', desc: ' ▼' }[h.column.getIsSorted() as string] ?? ''}
                </th>
              ))}
            </tr>
          ))}
        </thead>
        <tbody>
          {padTop > 0 && (
            <tr style={{ height: padTop }}>
              <td colSpan={columns.length} />
            </tr>
          )}
          {items.map((item) => {
            const row = tableRows[item.index];
            return (
              <tr key={row.id} style={{ height: ROW_HEIGHT }}>
                {row.getVisibleCells().map((cell) => (
                  <td key={cell.id} className={isNumeric(columns[Number(cell.column.id)].type) ? 'num' : undefined}>
                    {flexRender(cell.column.columnDef.cell, cell.getContext())}
                  </td>
                ))}
              </tr>
            );
          })}
          {padBottom > 0 && (
            <tr style={{ height: padBottom }}>
              <td colSpan={columns.length} />
            </tr>
          )}
        </tbody>
      </table>
      <div className="muted table-foot">{formatCount(rows.length)} rows</div>
    </div>
  );
}
