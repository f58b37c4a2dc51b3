// A short field (a role, a phrase, a title) kept as a register: typing replaces the value, and
// when two devices changed it at the same time both values are shown, to keep one.
import { conflictingValues, plainText } from "../edit";
import { TextField } from "./fields";

export function ShortField({
  label,
  editable,
  hint,
  parent,
  field,
  onSet,
}: {
  label: string;
  editable: boolean;
  hint?: string;
  /** The map holding the field (the record, or `consent`), as the document has it. */
  parent: unknown;
  field: string;
  onSet: (value: string) => void;
}) {
  const value = plainText((parent as Record<string, unknown> | undefined)?.[field]);
  const versions = conflictingValues(parent, field);
  return (
    <>
      <TextField label={label} editable={editable} hint={hint} value={value} onInput={onSet} />
      {versions.length > 0 && (
        <div class="notice conflict" role="group" aria-label={`${label}: changed on two devices at once`}>
          <p>
            <strong>{label}</strong> was changed on another device at the same time. Showing “{value}”.
          </p>
          {editable ? (
            <div class="row">
              {versions.map((v) => (
                <button key={v} type="button" class="secondary" onClick={() => onSet(v)}>
                  Keep “{v}”
                </button>
              ))}
            </div>
          ) : (
            <p>The other version: {versions.filter((v) => v !== value).map((v) => `“${v}”`).join(", ")}.</p>
          )}
        </div>
      )}
    </>
  );
}
