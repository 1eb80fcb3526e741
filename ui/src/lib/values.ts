// Typed values (attributes, log bodies) as the API sends them:
// `{type, value}` with `array` and `kvlist` values nested.
import type { Attribute, TypedValue } from '../api/types';

/** Typed values as text: arrays and maps as compact JSON of their values. */
export function renderValue(v: TypedValue): string {
  switch (v.type) {
    case 'string':
      return String(v.value);
    case 'empty':
      return '(empty)';
    case 'array':
    case 'kvlist':
      return JSON.stringify(plainValue(v));
    default:
      return String(v.value);
  }
}

/** The value without its type tags: arrays as arrays, kvlists as objects. */
export function plainValue(v: TypedValue): unknown {
  if (v.type === 'array') return ((v.value ?? []) as TypedValue[]).map(plainValue);
  if (v.type === 'kvlist') return Object.fromEntries(((v.value ?? []) as Attribute[]).map((a) => [a.key, plainValue(a)]));
  if (v.type === 'empty') return null;
  return v.value;
}
