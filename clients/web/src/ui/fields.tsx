// Form controls that render as labelled inputs when the user may write the field, and as
// plain labelled text when they may not (so read-only fields are not controls at all).
import type { ComponentChildren } from "preact";
import { useId } from "preact/hooks";

const valueOf = (e: Event) => (e.currentTarget as HTMLInputElement).value;

interface Common {
  label: string;
  editable: boolean;
  hint?: string;
}

function ReadOnly({ label, value, empty = "Not recorded" }: { label: string; value?: string; empty?: string }) {
  return (
    <div class="field read-only">
      <span class="label">{label}</span>
      <p class={value ? "value" : "value empty"} dir="auto">
        {value || empty}
      </p>
    </div>
  );
}

/** A control with its label and optional hint (which the control names in aria-describedby,
 *  see `hintId`). */
function Labelled({ id, label, hint, children }: { id: string; label: string; hint?: string; children: ComponentChildren }) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {hint && (
        <p id={hintId(id, hint)} class="hint">
          {hint}
        </p>
      )}
      {children}
    </div>
  );
}

const hintId = (id: string, hint?: string) => (hint ? `${id}-hint` : undefined);

export function TextField({
  label,
  editable,
  hint,
  value,
  onInput,
  multiline = false,
  type = "text",
  display,
}: Common & {
  value: string | undefined;
  onInput: (value: string) => void;
  multiline?: boolean;
  type?: "text" | "datetime-local" | "date";
  /** How to show the value when read-only (dates, say). */
  display?: string;
}) {
  const id = useId();
  if (!editable) return <ReadOnly label={label} value={display ?? value} />;
  const common = {
    id,
    // Record text stays out of the browser's autofill store and out of the form state it
    // writes to its session-restore files: only the app's encrypted store holds it.
    autocomplete: "off",
    // Right-to-left text (Arabic, Urdu, Hebrew) is shown in its own direction.
    dir: "auto" as const,
    value: value ?? "",
    "aria-describedby": hintId(id, hint),
    onInput: (e: Event) => onInput(valueOf(e)),
  };
  return (
    <Labelled id={id} label={label} hint={hint}>
      {multiline ? <textarea rows={5} {...common} /> : type === "text" ? <input type="text" {...common} /> : <input type={type} {...common} />}
    </Labelled>
  );
}

export function SelectField({
  label,
  editable,
  hint,
  value,
  options,
  onChange,
  placeholder = "Choose…",
}: Common & {
  value: string | undefined;
  options: { value: string; label: string }[];
  onChange: (value: string) => void;
  placeholder?: string;
}) {
  const id = useId();
  if (!editable) return <ReadOnly label={label} value={options.find((o) => o.value === value)?.label ?? value} />;
  return (
    <Labelled id={id} label={label} hint={hint}>
      <select id={id} value={value ?? ""} aria-describedby={hintId(id, hint)} onChange={(e) => onChange(valueOf(e))}>
        <option value="">{placeholder}</option>
        {options.map((o) => (
          <option value={o.value} key={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </Labelled>
  );
}

export function CheckboxField({
  label,
  editable,
  checked,
  onChange,
}: Common & { checked: boolean; onChange: (checked: boolean) => void }) {
  const id = useId();
  if (!editable) return <ReadOnly label={label} value={checked ? "Yes" : "No"} />;
  return (
    <div class="field checkbox">
      <input id={id} type="checkbox" checked={checked} onChange={(e) => onChange((e.currentTarget as HTMLInputElement).checked)} />
      <label for={id}>{label}</label>
    </div>
  );
}

/** A list of short texts (strengths, development areas). */
export function TextListField({
  label,
  itemLabel,
  editable,
  items,
  onItem,
  onAdd,
  onRemove,
}: Common & {
  itemLabel: string;
  items: string[];
  onItem: (index: number, value: string) => void;
  onAdd: () => void;
  onRemove: (index: number) => void;
}) {
  if (!editable) {
    return (
      <div class="field read-only">
        <span class="label">{label}</span>
        {items.filter(Boolean).length ? (
          <ul class="value">
            {items.map((item, i) => (
              <li key={i}>{item}</li>
            ))}
          </ul>
        ) : (
          <p class="value empty">None recorded</p>
        )}
      </div>
    );
  }
  return (
    <fieldset class="list-field">
      <legend>{label}</legend>
      {items.map((item, i) => (
        <ListItem key={i} label={`${itemLabel} ${i + 1}`} value={item} onInput={(v) => onItem(i, v)} onRemove={() => onRemove(i)} />
      ))}
      <button type="button" class="secondary" onClick={onAdd}>
        Add {itemLabel.toLowerCase()}
      </button>
    </fieldset>
  );
}

function ListItem({ label, value, onInput, onRemove }: { label: string; value: string; onInput: (v: string) => void; onRemove: () => void }) {
  const id = useId();
  return (
    <div class="list-item">
      <label for={id}>{label}</label>
      <div class="row">
        <input id={id} type="text" autocomplete="off" dir="auto" value={value} onInput={(e) => onInput(valueOf(e))} />
        <button type="button" class="secondary" onClick={onRemove}>
          Remove <span class="visually-hidden">{label}</span>
        </button>
      </div>
    </div>
  );
}

/** A part of a form. Its heading takes focus when the jump list (see jump-list.tsx) goes to it. */
export function Section({ title, children }: { title: string; children: ComponentChildren }) {
  const id = useId();
  return (
    <section class="card" aria-labelledby={id} data-section={title}>
      <h2 id={id} tabIndex={-1}>
        {title}
      </h2>
      {children}
    </section>
  );
}
