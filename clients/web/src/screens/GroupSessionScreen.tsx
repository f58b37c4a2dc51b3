// A group session: the facilitator records who took part, what the group worked on, a
// summary and actions, shares it, and closes it; each participant adds their own reflection
// (the server refuses anything else from them). Works offline like every record.
import type { DocHandle } from "@automerge/automerge-repo/slim";
import { formatDateTime, fromLocalInput, indexById, newId, putBackField, setText, setValue, toLocalInput } from "../edit";
import { type RecordStore, useStore } from "../records";
import type { Me } from "../session";
import type { GroupSession, Person, SessionKind } from "../types";
import { FrameworkAndComponents, toggleIn } from "../ui/components-field";
import { Section, SelectField, TextField, TextListField } from "../ui/fields";
import { Rejections, SetAsideWork, SyncText, useRefused } from "../ui/record-status";
import { DiscardDraft } from "../ui/discard-draft";
import { NewSinceLastOpened } from "../ui/new-since";
import { othersParts } from "../turn";
import { Missing, useRecord } from "./ObservationScreen";

export const SESSION_KINDS: { value: SessionKind; label: string }[] = [
  { value: "group-supervision", label: "Reflective group supervision" },
  { value: "team-development", label: "Team development session" },
  { value: "practice-discussion", label: "Practice discussion" },
];
export const SESSION_STATUS: Record<string, string> = { draft: "Draft", shared: "Shared with participants", closed: "Closed" };

export const sessionTitle = (doc: GroupSession | undefined) =>
  `${SESSION_KINDS.find((k) => k.value === doc?.kind)?.label ?? "Group session"}${doc?.heldAt ? `, ${formatDateTime(doc.heldAt)}` : ""}`;

/** The people a facilitator may invite: those the server lists for them. */
function invitable(store: RecordStore, me: Me): Person[] {
  const seen = new Map<string, Person>();
  for (const p of [...store.people.supervisees, ...store.people.supervisors]) if (p.id !== me.id) seen.set(p.id, p);
  return [...seen.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export function GroupSessionScreen({ store, me, documentId }: { store: RecordStore; me: Me; documentId: string }) {
  useStore(store);
  const { handle, doc, missing } = useRecord<GroupSession>(store, documentId);
  const refused = useRefused(documentId, store.onServer(`automerge:${documentId}`));
  if (!handle || !doc || doc.type !== "group-session") return <Missing missing={missing} />;

  const change = (fn: (d: GroupSession) => void) => store.change(handle, fn);
  const isFacilitator = doc.facilitatorId === me.id;
  const isParticipant = doc.participantIds.includes(me.id);
  const closed = doc.status === "closed";
  const edits = isFacilitator && !closed && !refused;
  const reflects = isParticipant && doc.status === "shared" && !refused;
  const people = invitable(store, me);
  const name = (id: string) => (id === me.id ? `${me.name} (you)` : store.personName(id));
  const participants = doc.participantIds.map(name);
  const reflected = doc.participantIds.filter((p) => (doc.reflections?.[p] ?? "").trim() !== "");

  const toggleParticipant = (id: string, on: boolean) => change((d) => toggleIn(d.participantIds, id, on));
  const share = () => {
    if (!window.confirm(`Share this session with ${participants.length === 1 ? "its participant" : `its ${participants.length} participants`}? They can then read it and add their reflection.`)) return;
    change((d) => void (d.status = "shared"));
  };
  const close = () => {
    if (!window.confirm("Close this session? Once closed, nobody can change it, and participants can no longer add a reflection.")) return;
    change((d) => {
      d.closedAt = new Date().toISOString();
      d.status = "closed";
    });
  };

  return (
    <article class="record">
      <p class="no-print">
        <a href="#/">Back to home</a>
      </p>
      <h1 tabIndex={-1}>{sessionTitle(doc)}</h1>
      <div class="record-state">
        <p>
          Status: <strong>{SESSION_STATUS[doc.status] ?? doc.status}</strong>. Facilitator: {name(doc.facilitatorId)}.
          {doc.status !== "draft" && ` Reflections: ${reflected.length} of ${doc.participantIds.length}.`}
        </p>
        <NewSinceLastOpened url={handle.url} parts={othersParts(doc, me.id)} />
        <SyncText handle={handle as DocHandle<unknown>} live />
        {closed && (
          <p class="locked" role="status">
            Closed{doc.closedAt ? ` on ${formatDateTime(doc.closedAt)}` : ""}. Nothing in this session can be changed.
          </p>
        )}
        {reflects && !reflected.includes(me.id) && (
          <p class="awaiting" role="status">
            Awaiting your reflection.
          </p>
        )}
        <Rejections documentId={handle.documentId} askWho={isFacilitator ? "admin" : "facilitator"} onServer={store.onServer(handle.url)} />
        <SetAsideWork
          documentId={handle.documentId}
          current={doc as unknown as Record<string, unknown>}
          putBack={(field, value) => change((d) => putBackField(d as never, field, value))}
        />
      </div>

      <Section title="The session">
        <SelectField label="Kind of session" editable={edits} value={doc.kind} options={SESSION_KINDS} onChange={(v) => v && change((d) => void (d.kind = v as SessionKind))} />
        <TextField
          label="Held at"
          type="datetime-local"
          editable={edits}
          value={toLocalInput(doc.heldAt)}
          display={formatDateTime(doc.heldAt)}
          onInput={(v) => change((d) => setValue(d as never, "heldAt", fromLocalInput(v)))}
        />
        {edits ? (
          <fieldset>
            <legend>Participants</legend>
            {people.length === 0 && <p>No colleagues are listed for you. Connect to the network once to download them.</p>}
            {people.map((p) => (
              <div class="field checkbox" key={p.id}>
                <input
                  id={`p-${p.id}`}
                  type="checkbox"
                  checked={doc.participantIds.includes(p.id)}
                  disabled={reflected.includes(p.id)}
                  onChange={(e) => toggleParticipant(p.id, (e.currentTarget as HTMLInputElement).checked)}
                />
                <label for={`p-${p.id}`}>{p.name}</label>
              </div>
            ))}
          </fieldset>
        ) : (
          <div class="field read-only">
            <span class="label">Participants</span>
            {participants.length ? (
              <ul class="value">
                {participants.map((p) => (
                  <li key={p}>{p}</li>
                ))}
              </ul>
            ) : (
              <p class="value empty">None chosen</p>
            )}
          </div>
        )}
      </Section>

      <Section title="What the group worked on">
        <FrameworkAndComponents store={store} doc={doc} label="Areas discussed" editable={edits} change={change} />
        <TextListField
          label="Themes"
          itemLabel="Theme"
          editable={edits}
          items={doc.themes ?? []}
          onItem={(i, v) => change((d) => setText(d, ["themes", i], v))}
          onAdd={() => change((d) => void d.themes.push(""))}
          onRemove={(i) => change((d) => void d.themes.splice(i, 1))}
        />
        <TextField
          label="Summary"
          hint="Anonymised: no names or details of children, families or anyone outside the group."
          multiline
          editable={edits}
          value={doc.summary}
          onInput={(v) => change((d) => setText(d, ["summary"], v))}
        />
      </Section>

      <Section title="Actions">
        {(doc.actions ?? []).length === 0 && <p>No actions agreed yet.</p>}
        {(doc.actions ?? []).map((action, i) =>
          edits ? (
            <div class="goal" key={action.id}>
              <TextField label={`Action ${i + 1}`} editable value={action.text} onInput={(v) => change((d) => {
                const at = indexById(d.actions, action.id);
                if (at >= 0) setText(d, ["actions", at, "text"], v);
              })} />
              <SelectField
                label={`Action ${i + 1}: who`}
                editable
                value={action.ownerId}
                placeholder="The whole group"
                options={[doc.facilitatorId, ...doc.participantIds].map((id) => ({ value: id, label: name(id) }))}
                onChange={(v) => change((d) => {
                  const at = indexById(d.actions, action.id);
                  if (at >= 0) setValue(d.actions[at] as never, "ownerId", v);
                })}
              />
              <button type="button" class="secondary" onClick={() => change((d) => {
                const at = indexById(d.actions, action.id);
                if (at >= 0) d.actions.splice(at, 1);
              })}>
                Remove action {i + 1}
              </button>
            </div>
          ) : (
            <p key={action.id}>
              {action.text || "(no text)"} — {action.ownerId ? name(action.ownerId) : "the whole group"}
            </p>
          ),
        )}
        {edits && (
          <button type="button" class="secondary" onClick={() => change((d) => void d.actions.push({ id: newId(), text: "" }))}>
            Add action
          </button>
        )}
      </Section>

      {doc.status !== "draft" && (
        <Section title="Reflections">
          {isParticipant && (
            <TextField
              label="Your reflection"
              hint="What you take from the session for your practice. Only you can write here."
              multiline
              editable={reflects}
              value={doc.reflections?.[me.id]}
              onInput={(v) => change((d) => setText(d, ["reflections", me.id], v))}
            />
          )}
          {doc.participantIds
            .filter((p) => p !== me.id)
            .map((p) => (
              <TextField key={p} label={`Reflection of ${name(p)}`} editable={false} value={doc.reflections?.[p]} onInput={() => undefined} />
            ))}
        </Section>
      )}

      {isFacilitator && !closed && (
        <div class="actions">
          {doc.status === "draft" && (
            <button type="button" onClick={share} disabled={refused || doc.participantIds.length === 0}>
              Share with participants
            </button>
          )}
          {doc.status === "shared" && (
            <button type="button" onClick={close} disabled={refused}>
              Close session
            </button>
          )}
          {doc.status === "draft" && doc.participantIds.length === 0 && <p class="hint">Choose the participants before sharing.</p>}
          <DiscardDraft store={store} handle={handle} />
        </div>
      )}
    </article>
  );
}
