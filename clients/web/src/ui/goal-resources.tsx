// Research a goal cites, and suggestions: current resources on the goal's framework areas that
// it does not cite yet. The plan's supervisor and owner cite and remove; a retired resource
// stays on the goals that cite it, marked. Works offline from the last fetched list.
import type { RecordStore } from "../records";
import type { Goal } from "../types";

export function GoalResources({
  store,
  goal,
  label,
  editable,
  onCite,
  onRemove,
}: {
  store: RecordStore;
  goal: Goal;
  /** "Goal 2", for names that say which goal a control belongs to. */
  label: string;
  editable: boolean;
  onCite: (id: string) => void;
  onRemove: (id: string) => void;
}) {
  const cited = goal.resources ?? [];
  const suggested = store.resourcesOn(goal.components ?? []).filter((r) => !cited.includes(r.id));
  return (
    <div class="goal-resources">
      <h4>Reading</h4>
      {cited.length === 0 ? (
        <p>No research cited yet.</p>
      ) : (
        <ul aria-label={`${label}: research cited`}>
          {cited.map((id) => {
            const r = store.resource(id);
            return (
              <li key={id}>
                {r ? (
                  <>
                    <a href={r.url} target="_blank" rel="noopener noreferrer">
                      {r.title}
                    </a>{" "}
                    ({r.publisher}){r.retired && <em> — retired from the list</em>}
                  </>
                ) : (
                  id
                )}{" "}
                {editable && (
                  <button
                    type="button"
                    class="secondary"
                    aria-label={`Remove ${r?.title ?? id} from ${label}`}
                    onClick={() => onRemove(id)}
                  >
                    Remove
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      )}
      {editable && suggested.length > 0 && (
        <>
          <h5>Suggested for this area</h5>
          <ul aria-label={`${label}: suggested research`}>
            {suggested.map((r) => (
              <li key={r.id}>
                <a href={r.url} target="_blank" rel="noopener noreferrer">
                  {r.title}
                </a>{" "}
                ({r.publisher}){" "}
                <button type="button" class="secondary" aria-label={`Cite ${r.title} on ${label}`} onClick={() => onCite(r.id)}>
                  Cite
                </button>
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
