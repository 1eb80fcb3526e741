import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseExamples } from './examples';

describe('parseExamples', () => {
  it('finds numbered SQL blocks with their titles, unindented', () => {
    const md = 'x\n1. Slowest endpoints (p99):\n   ```sql\n   SELECT 1\n   FROM spans\n   ```\n2. Other:\n   ```sql\n   SELECT 2\n   ```\n';
    expect(parseExamples(md)).toEqual([
      { title: 'Slowest endpoints (p99)', sql: 'SELECT 1\nFROM spans' },
      { title: 'Other', sql: 'SELECT 2' },
    ]);
  });

  it("reads every example of the project's README", () => {
    const examples = parseExamples(readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8'));
    expect(examples.length).toBeGreaterThanOrEqual(10);
    for (const e of examples) expect(e.sql).toMatch(/^(SELECT|WITH)\b/);
  });
});
