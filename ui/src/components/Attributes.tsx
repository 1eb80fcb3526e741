import type { Attribute } from '../api/types';
import { renderValue } from '../lib/values';

/** A titled table of typed attributes, with the SDK's dropped count. */
export function Attributes({ title, attributes, dropped }: { title: string; attributes: Attribute[]; dropped?: number }) {
  return (
    <section>
      <h4>
        {title} ({attributes.length})
      </h4>
      <AttributeTable attributes={attributes} />
      {!!dropped && <p className="muted">{dropped} attributes dropped by the SDK</p>}
    </section>
  );
}

export function AttributeTable({ attributes }: { attributes: Attribute[] }) {
  if (!attributes.length) return null;
  return (
    <table className="attrs">
      <tbody>
        {attributes.map((a) => (
          <tr key={a.key}>
            <th>{a.key}</th>
            <td>
              <span className={`value type-${a.type}`}>{renderValue(a)}</span>
              <span className="type-tag">{a.type}</span>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
