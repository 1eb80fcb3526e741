// The README's example queries, read from README.md at build time so the
// console and the documentation never disagree.
import readme from '../../../../README.md?raw';

export interface Example {
  title: string;
  sql: string;
}

/** Numbered items of the form `N. Title:` followed by a ```sql block. */
export function parseExamples(markdown: string): Example[] {
  const examples: Example[] = [];
  const pattern = /^\s*\d+\.\s+(.+?):?\s*\n\s*```sql\n([\s\S]*?)\n\s*```/gm;
  for (const match of markdown.matchAll(pattern)) {
    const indent = /^\s*/.exec(match[2])?.[0].length ?? 0;
    const sql = match[2]
      .split('\n')
      .map((line) => line.slice(Math.min(indent, line.length - line.trimStart().length)))
      .join('\n');
    examples.push({ title: match[1].replace(/:$/, '').replace(/`/g, ''), sql });
  }
  return examples;
}

export const EXAMPLES = parseExamples(readme);
