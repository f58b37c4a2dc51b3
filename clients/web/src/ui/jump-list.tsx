// A long form's parts, at its top: how many of the parts to fill in are done, and a button
// for each part that moves focus to it (so the keyboard reaches Share in a few presses, not
// dozens). Buttons, not links: the app's routes live in the URL's hash.
export interface FormPart {
  title: string;
  /** Whether the viewer has filled it in; absent: nothing for them to fill in there. */
  done?: boolean;
}

function jumpTo(title: string): void {
  const heading = document.querySelector<HTMLElement>(`section[data-section="${CSS.escape(title)}"] h2`);
  heading?.scrollIntoView({ block: "start" });
  heading?.focus({ preventScroll: true });
}

export function JumpList({ parts }: { parts: FormPart[] }) {
  const toFill = parts.filter((p) => p.done !== undefined);
  const done = toFill.filter((p) => p.done).length;
  return (
    <nav class="jump-list no-print" aria-label="Parts of this record">
      {toFill.length > 0 && (
        <p>
          <progress max={toFill.length} value={done} aria-hidden="true" /> {done} of {toFill.length} parts filled in
        </p>
      )}
      <ul>
        {parts.map((part) => (
          <li key={part.title}>
            <button type="button" class="link" onClick={() => jumpTo(part.title)}>
              {part.title}
              {part.done === true ? " — done" : part.done === false ? " — to do" : ""}
            </button>
          </li>
        ))}
      </ul>
    </nav>
  );
}
