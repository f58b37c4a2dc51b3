// Choosing whom to observe, against which framework. Both are fixed once the record exists
// (the server does not let anyone change whose record it is).
import { useRef, useState } from "preact/hooks";
import { createObservation } from "../create";
import { type RecordStore, useStore } from "../records";
import { navigate, observationHref } from "../router";
import type { Me } from "../session";
import { SelectField } from "../ui/fields";

export function NewObservation({ store, me }: { store: RecordStore; me: Me }) {
  useStore(store);
  const supervisees = store.people.supervisees;
  const [practitionerId, setPractitionerId] = useState(supervisees.length === 1 ? supervisees[0].id : "");
  const defaultFramework = (id: string) => {
    const person = supervisees.find((p) => p.id === id);
    return person && person.role !== "practitioner" ? "kss-ps-2018" : "kss-cf-2018";
  };
  const [framework, setFramework] = useState("");
  const [error, setError] = useState<string | null>(null);
  const chosenFramework = framework || defaultFramework(practitionerId);
  const frameworks = store.frameworks.length
    ? store.frameworks.map((f) => ({ value: f.id, label: `${f.title} (${f.version})` }))
    : [{ value: chosenFramework, label: chosenFramework }];

  // A double tap starts one observation, not two.
  const started = useRef(false);
  const start = (e: Event) => {
    e.preventDefault();
    if (!practitionerId) {
      setError("Choose the person you are observing.");
      return;
    }
    if (started.current) return;
    started.current = true;
    const handle = createObservation(store, me, practitionerId, chosenFramework);
    navigate(observationHref(handle.url));
  };

  return (
    <div>
      <p class="no-print">
        <a href="#/">Back to home</a>
      </p>
      <h1 tabIndex={-1}>New observation</h1>
      <form class="card" onSubmit={start} noValidate>
        <SelectField
          label={supervisees.length > 0 && supervisees.every((p) => p.role !== "practitioner") ? "Supervisor observed" : "Practitioner observed"}
          hint="Only your supervisees are listed. This cannot be changed after you start."
          editable
          value={practitionerId}
          options={supervisees.map((p) => ({ value: p.id, label: p.name }))}
          onChange={(v) => {
            setPractitionerId(v);
            setError(null);
          }}
        />
        <SelectField label="Framework" editable value={chosenFramework} options={frameworks} onChange={setFramework} />
        <div aria-live="assertive">{error && <p class="error">{error}</p>}</div>
        <button type="submit">Start observation</button>
      </form>
    </div>
  );
}
