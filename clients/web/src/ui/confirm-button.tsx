// A step that counts (share, sign off, agree a plan): the button first says what is missing,
// or asks for confirmation in words that say what happens next; only "Yes" does it.
import { useEffect, useRef, useState } from "preact/hooks";

export function ConfirmButton({
  label,
  question,
  consequence,
  yes,
  problems = [],
  secondary = false,
  onConfirm,
}: {
  label: string;
  question: string;
  /** What happens, and what cannot be undone. */
  consequence: string;
  /** The confirming button's words ("Share now"). */
  yes: string;
  /** What must be done first; while any remain, the step is not offered. */
  problems?: string[];
  /** A step aside from the record's course (discarding it), shown less prominently. */
  secondary?: boolean;
  onConfirm: () => void;
}) {
  const [asking, setAsking] = useState(false);
  const panel = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (asking) panel.current?.focus();
  }, [asking]);
  if (!asking) {
    return (
      <button type="button" class={secondary ? "secondary" : undefined} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  const blocked = problems.length > 0;
  return (
    <div ref={panel} tabIndex={-1} class="card confirm" role={blocked ? "alert" : "group"} aria-label={blocked ? `Before: ${label}` : question}>
      {blocked ? (
        <>
          <p>
            <strong>Not yet: first</strong>
          </p>
          <ul>
            {problems.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
        </>
      ) : (
        <>
          <p>
            <strong>{question}</strong>
          </p>
          <p>{consequence}</p>
        </>
      )}
      <div class="row">
        {!blocked && (
          <button
            type="button"
            onClick={() => {
              setAsking(false);
              onConfirm();
            }}
          >
            {yes}
          </button>
        )}
        <button type="button" class="secondary" onClick={() => setAsking(false)}>
          {blocked ? "Back to the record" : "Cancel"}
        </button>
      </div>
    </div>
  );
}
