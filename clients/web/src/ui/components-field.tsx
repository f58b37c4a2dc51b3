// Picking framework areas and components (an observation's focus, a group session's, a
// theme's): checkboxes while editable, a list of titles otherwise.
import type { RecordStore } from "../records";
import { SelectField } from "./fields";

export function ComponentsField({
  store,
  framework,
  label,
  readLabel,
  editable,
  chosen,
  onToggle,
}: {
  store: RecordStore;
  framework: string | undefined;
  label: string;
  readLabel: string;
  editable: boolean;
  chosen: string[];
  onToggle: (id: string, on: boolean) => void;
}) {
  if (!editable) {
    return (
      <div class="field read-only">
        <span class="label">{readLabel}</span>
        {chosen.length ? (
          <ul class="value">
            {chosen.map((c) => (
              <li key={c}>{store.componentTitle(c)}</li>
            ))}
          </ul>
        ) : (
          <p class="value empty">None chosen</p>
        )}
      </div>
    );
  }
  const choices =
    store.framework(framework)?.areas.flatMap((a) => [
      { id: a.id, title: `${a.number}. ${a.title}`, sub: false },
      ...a.components.map((c) => ({ id: c.id, title: c.title, sub: true })),
    ]) ?? [];
  return (
    <fieldset>
      <legend>{label}</legend>
      {choices.length === 0 && <p>The framework list has not been downloaded yet. Connect to the network once.</p>}
      {choices.map((c) => (
        <div class={c.sub ? "field checkbox sub" : "field checkbox"} key={c.id}>
          <input id={`c-${c.id}`} type="checkbox" checked={chosen.includes(c.id)} onChange={(e) => onToggle(c.id, (e.currentTarget as HTMLInputElement).checked)} />
          <label for={`c-${c.id}`}>{c.title}</label>
        </div>
      ))}
    </fieldset>
  );
}

/** Adds or removes `id` in a record's component list. */
export function toggleIn(list: string[], id: string, on: boolean): void {
  const at = list.indexOf(id);
  if (on && at < 0) list.push(id);
  if (!on && at >= 0) list.splice(at, 1);
}

/** A record's own framework and its components (a group session's, a theme's): choosing
 *  another framework clears the components, which belong to the old one. */
export function FrameworkAndComponents<T extends { framework?: string; components: string[] }>({
  store,
  doc,
  label,
  editable,
  change,
}: {
  store: RecordStore;
  doc: T;
  label: string;
  editable: boolean;
  change: (fn: (d: T) => void) => void;
}) {
  return (
    <>
      <SelectField
        label="Framework"
        editable={editable}
        value={doc.framework}
        options={store.frameworks.map((f) => ({ value: f.id, label: `${f.title} (${f.version})` }))}
        onChange={(v) =>
          change((d) => {
            if (!v || v === d.framework) return;
            d.framework = v;
            d.components.splice(0, d.components.length);
          })
        }
      />
      <ComponentsField
        store={store}
        framework={doc.framework}
        label={label}
        readLabel={label}
        editable={editable}
        chosen={doc.components ?? []}
        onToggle={(id, on) => change((d) => toggleIn(d.components, id, on))}
      />
    </>
  );
}
