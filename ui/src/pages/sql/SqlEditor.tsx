import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { EditorView, basicSetup } from 'codemirror';
import { keymap } from '@codemirror/view';
import { Prec, EditorSelection } from '@codemirror/state';
import { sql, PostgreSQL } from '@codemirror/lang-sql';

/**
 * CodeMirror 6 with SQL highlighting and completion of Skein's tables and
 * columns (`schema`); Ctrl/Cmd-Enter runs.
 */
export function SqlEditor({
  value,
  onChange,
  onRun,
  schema,
  onView,
}: {
  value: string;
  onChange: (sql: string) => void;
  onRun: () => void;
  schema: Record<string, string[]>;
  /** The editor once made (null when it goes), e.g. to move its cursor. */
  onView?: (view: EditorView | null) => void;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [view, setView] = useState<EditorView | null>(null);
  // The editor's listeners call the latest callbacks without being rebuilt.
  const latest = useRef({ onChange, onRun, onView, value });
  useLayoutEffect(() => {
    latest.current = { onChange, onRun, onView, value };
  });
  useEffect(() => {
    if (!box.current) return;
    const view = new EditorView({
      doc: latest.current.value,
      parent: box.current,
      extensions: [
        basicSetup,
        sql({ dialect: PostgreSQL, schema, upperCaseKeywords: true }),
        Prec.highest(
          keymap.of([
            {
              key: 'Mod-Enter',
              run: () => {
                latest.current.onRun();
                return true;
              },
            },
          ]),
        ),
        EditorView.updateListener.of((u) => u.docChanged && latest.current.onChange(u.state.doc.toString())),
        EditorView.contentAttributes.of({ 'aria-label': 'SQL editor' }),
      ],
    });
    setView(view);
    latest.current.onView?.(view);
    return () => {
      view.destroy();
      setView(null);
      latest.current.onView?.(null);
    };
    // The editor is rebuilt only when the schema arrives; text flows through onChange.
  }, [schema]);
  // Outside changes (an example, history, back button) replace the text.
  useEffect(() => {
    if (view && view.state.doc.toString() !== value) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: value } });
    }
  }, [value, view]);
  return <div ref={box} className="sql-editor" />;
}

/** Puts the cursor at a 1-based line and column, e.g. from a parser error. */
export function moveCursor(view: EditorView, line: number, column: number) {
  const doc = view.state.doc;
  if (line < 1 || line > doc.lines) return;
  const l = doc.line(line);
  const pos = Math.min(l.from + Math.max(column - 1, 0), l.to);
  view.dispatch({ selection: EditorSelection.cursor(pos), scrollIntoView: true });
  view.focus();
}
