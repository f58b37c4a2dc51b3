// One observation. The observer writes the context, focus, observation, feedback and actions;
// the practitioner writes reflection, response and family voice. Each sees the other's part
// as text. A sign-off covers the record as the signer saw it: once the observer signs, only
// the practitioner's part stays open; once the practitioner signs, nothing but the
// observer's sign-off. A signer who must change something withdraws their sign-off first
// (the other party sees it). After both sign-offs nothing is editable.
import type { DocHandle } from "@automerge/automerge-repo/slim";
import { useEffect, useState } from "preact/hooks";
import { formatDateTime, fromLocalInput, indexById, newId, plainText, putBackField, setShort, setText, setValue, toLocalInput } from "../edit";
import { type RecordStore, useStore } from "../records";
import type { Me } from "../session";
import { type DevelopmentPlan, isLocked, type Judgement, type Observation, type RecordDoc } from "../types";
import { ComponentsField, toggleIn } from "../ui/components-field";
import { CheckboxField, Section, SelectField, TextField, TextListField } from "../ui/fields";
import { Rejections, SetAsideWork, SyncText, useRefused } from "../ui/record-status";
import { NewSinceLastOpened } from "../ui/new-since";
import { ConfirmButton } from "../ui/confirm-button";
import { DiscardDraft } from "../ui/discard-draft";
import { ShortField } from "../ui/short-field";
import { observationParts, sharingProblems } from "../checks";
import { JumpList } from "../ui/jump-list";
import { observationTurn, othersParts } from "../turn";

const SETTINGS = [
  ["home-visit", "Home visit"],
  ["office-visit", "Office visit"],
  ["virtual", "Virtual (video or phone)"],
  ["meeting", "Meeting"],
  ["child-protection-conference", "Child protection conference"],
  ["court", "Court"],
  ["supervision-session", "Supervision session"],
  ["other", "Other"],
].map(([value, label]) => ({ value, label }));

const JUDGEMENTS: { value: Judgement; label: string }[] = [
  { value: "met", label: "Met" },
  { value: "not-met", label: "Not met" },
  { value: "insufficient-opportunity", label: "Insufficient opportunity" },
];

export function useRecord<T extends RecordDoc>(store: RecordStore, documentId: string) {
  const [handle, setHandle] = useState<DocHandle<T> | undefined>();
  const [missing, setMissing] = useState(false);
  useEffect(() => {
    let live = true;
    let retry: ReturnType<typeof setTimeout> | undefined;
    setHandle(undefined);
    setMissing(false);
    // Not on this device and not (yet) from the server, e.g. opened before the socket is up:
    // keep asking until it arrives.
    const attempt = () =>
      store.open(`automerge:${documentId}`).then((h) => {
        if (!live) return;
        if (h) return setHandle(h as unknown as DocHandle<T>);
        setMissing(true);
        retry = setTimeout(attempt, 2000);
      });
    void attempt();
    return () => {
      live = false;
      clearTimeout(retry);
    };
  }, [store, documentId]);
  // The "Opening record…" heading that had focus is gone: focus the record's own heading.
  useEffect(() => {
    const active = document.activeElement;
    if (handle && (!active || active === document.body || active.tagName === "H1")) {
      document.querySelector<HTMLElement>("main h1")?.focus();
    }
  }, [handle]);
  return { handle, doc: handle?.doc(), missing };
}

export function Missing({ missing }: { missing: boolean }) {
  return (
    <div>
      <p class="no-print">
        <a href="#/">Back to home</a>
      </p>
      <h1 tabIndex={-1}>{missing ? "Record not available" : "Opening record…"}</h1>
      {missing && <p>This record is not on this device yet, and the server has not sent it. It opens by itself once it arrives; check that you are online.</p>}
    </div>
  );
}

export function ObservationScreen({ store, me, documentId }: { store: RecordStore; me: Me; documentId: string }) {
  useStore(store);
  const { handle, doc, missing } = useRecord<Observation>(store, documentId);
  const [, rerender] = useState(0);
  const refused = useRefused(documentId, store.onServer(`automerge:${documentId}`));
  if (!handle || !doc || doc.type !== "observation") return <Missing missing={missing} />;

  const change = (fn: (d: Observation) => void) => store.change(handle, fn);
  const locked = isLocked(doc);
  const isObserver = doc.observerId === me.id;
  const isPractitioner = doc.practitionerId === me.id;
  const signedByObserver = Boolean(doc.signOff?.observer);
  const signedByPractitioner = Boolean(doc.signOff?.practitioner);
  // The server enforces the same: a signature freezes what it covers.
  const observerEdits = isObserver && !locked && !refused && !signedByObserver && !signedByPractitioner;
  const practitionerEdits = isPractitioner && !locked && !refused && doc.status === "shared" && !signedByPractitioner;
  const mySide = isObserver ? "observer" : isPractitioner ? "practitioner" : null;
  const iSigned = mySide !== null && Boolean(doc.signOff?.[mySide]);
  const mayAct = !locked && !refused && doc.status === "shared";
  const plans = store
    .entries()
    .map((e) => e.doc)
    .filter((d): d is DevelopmentPlan => d?.type === "development-plan" && d.ownerId === doc.practitionerId);
  const goals = plans.flatMap((p) => p.goals ?? []).map((g) => ({ value: g.id, label: plainText(g.title) || "Untitled goal" }));
  const nameOf = (id: string) => (id === me.id ? me.name : store.personName(id));
  const practitioner = isPractitioner ? `${me.name} (you)` : store.personName(doc.practitionerId);
  const observer = isObserver ? `${me.name} (you)` : store.personName(doc.observerId);

  const signOff = () =>
    change((d) => {
      const at = new Date().toISOString();
      if (isObserver) d.signOff.observer = { at, by: me.id };
      else d.signOff.practitioner = { at, by: me.id };
      if (d.signOff.observer && d.signOff.practitioner) d.status = "signed-off";
    });
  const withdrawSignOff = () =>
    change((d) => {
      if (mySide) delete d.signOff[mySide];
    });
  const otherName = isObserver ? practitioner : observer;
  const frozenNote = locked
    ? null
    : isObserver && signedByObserver
      ? "You have signed off: your part is shown as text. Withdraw your sign-off to change it."
      : isObserver && signedByPractitioner
        ? `${otherName} has signed off the record as it stands, so it is shown as text. If something must change, ask them to withdraw their sign-off.`
        : isPractitioner && signedByPractitioner
          ? "You have signed off: the record is shown as text. Withdraw your sign-off to change your part."
          : isPractitioner && signedByObserver
            ? `${otherName} has signed off their part; it is shown as text. Your reflection, response and family voice stay open until you sign off.`
            : null;

  const toggleComponent = (id: string, on: boolean) =>
    change((d) => {
      toggleIn(d.components, id, on);
      if (!on) delete d.judgements[id];
    });

  // On the practitioner's own device, what they answer and their part come first.
  const feedbackPart = (
    <Section title="Feedback">
      <TextField label="Feedback to the practitioner" multiline editable={observerEdits} value={doc.feedback} onInput={(v) => change((d) => setText(d, ["feedback"], v))} />
      <TextField
        label="Feedback given at"
        type="datetime-local"
        editable={observerEdits}
        value={toLocalInput(doc.feedbackGivenAt)}
        display={formatDateTime(doc.feedbackGivenAt)}
        onInput={(v) => change((d) => setValue(d as never, "feedbackGivenAt", fromLocalInput(v)))}
      />
    </Section>
  );
  const practitionerPart = (doc.status !== "draft" || isPractitioner) && (
    <Section title="Practitioner's reflection">
      <TextField label="Reflection" multiline editable={practitionerEdits} value={doc.reflection} onInput={(v) => change((d) => setText(d, ["reflection"], v))} />
      <TextField label="Response to feedback" multiline editable={practitionerEdits} value={doc.response} onInput={(v) => change((d) => setText(d, ["response"], v))} />
      <TextField
        label="Family voice"
        hint="What the child or family said about the visit, anonymised — no names."
        multiline
        editable={practitionerEdits}
        value={doc.familyVoice?.text}
        onInput={(v) => change((d) => setText(d, ["familyVoice", "text"], v))}
      />
      <TextField
        label="How the family's views were gathered"
        hint="For example: conversation at the end of the visit, feedback card."
        editable={practitionerEdits}
        value={doc.familyVoice?.how}
        onInput={(v) => change((d) => setText(d, ["familyVoice", "how"], v))}
      />
    </Section>
  );

  return (
    <article class="record">
      <p class="no-print">
        <a href="#/">Back to home</a>
      </p>
      <h1 tabIndex={-1}>Observation of {isPractitioner ? "your practice" : practitioner}</h1>
      <div class="record-state">
        <p>
          Status: <strong>{observationTurn(doc, me.id, (id) => store.personName(id))}</strong>. Observer: {observer}.
        </p>
        <NewSinceLastOpened url={handle.url} parts={othersParts(doc, me.id)} />
        <SyncText handle={handle as DocHandle<unknown>} live />
        {locked && (
          <p class="locked" role="status">
            Signed off by both — locked. Nothing in this record can be changed.
          </p>
        )}
        {frozenNote && <p class="hint frozen">{frozenNote}</p>}
        {!locked && observerEdits && <p class="hint">Everything you type is saved as you go.</p>}
        <Rejections
          documentId={handle.documentId}
          askWho={isObserver ? "admin" : "supervisor"}
          onServer={store.onServer(handle.url)}
        />
        <SetAsideWork
          documentId={handle.documentId}
          current={doc as unknown as Record<string, unknown>}
          putBack={(field, value) => change((d) => putBackField(d as never, field, value))}
        />
      </div>

      <JumpList parts={observationParts(doc, observerEdits ? "observer" : practitionerEdits ? "practitioner" : null)} />

      {isPractitioner && feedbackPart}
      {isPractitioner && practitionerPart}

      <Section title="Context">
        <div class="field read-only">
          <span class="label">Practitioner observed</span>
          <p class="value">{practitioner}</p>
        </div>
        <TextField
          label="Date and time observed"
          type="datetime-local"
          editable={observerEdits}
          value={toLocalInput(doc.observedAt)}
          display={formatDateTime(doc.observedAt)}
          onInput={(v) => change((d) => setValue(d as never, "observedAt", fromLocalInput(v)))}
        />
        <SelectField label="Setting" editable={observerEdits} value={doc.setting} options={SETTINGS} onChange={(v) => change((d) => setValue(d as never, "setting", v))} />
        <ShortField
          label="Who was present"
          hint="Roles only — do not enter names of children or family members. For example: mother, two children under 5."
          editable={observerEdits}
          parent={doc}
          field="present"
          onSet={(v) => change((d) => setShort(d, ["present"], v))}
        />
        <ShortField label="Purpose of the visit or meeting" editable={observerEdits} parent={doc} field="purpose" onSet={(v) => change((d) => setShort(d, ["purpose"], v))} />
      </Section>

      <Section title="Consent">
        <CheckboxField
          label="The family agreed to the observation"
          editable={observerEdits}
          checked={!!doc.consent?.given}
          onChange={(given) =>
            change((d) => {
              d.consent ??= {};
              d.consent.given = given;
            })
          }
        />
        <ShortField
          label="Consent given by (role)"
          hint="A role, such as mother or young person — not a name."
          editable={observerEdits}
          parent={doc.consent}
          field="by"
          onSet={(v) => change((d) => setShort(d, ["consent", "by"], v))}
        />
        <ShortField label="How consent was given" editable={observerEdits} parent={doc.consent} field="how" onSet={(v) => change((d) => setShort(d, ["consent", "how"], v))} />
        <TextField
          label="Consent withdrawn at (if it was)"
          type="datetime-local"
          editable={observerEdits}
          value={toLocalInput(doc.consent?.withdrawnAt)}
          display={formatDateTime(doc.consent?.withdrawnAt) || "Not withdrawn"}
          onInput={(v) =>
            change((d) => {
              d.consent ??= {};
              setValue(d.consent as never, "withdrawnAt", fromLocalInput(v));
            })
          }
        />
      </Section>

      <Section title="Focus">
        <SelectField
          label="Framework"
          editable={observerEdits}
          value={doc.framework}
          options={store.frameworks.length ? store.frameworks.map((f) => ({ value: f.id, label: `${f.title} (${f.version})` })) : [{ value: doc.framework, label: doc.framework }]}
          onChange={(v) => {
            if (!v || v === doc.framework) return;
            // The chosen areas and judgements belong to the old framework: never drop them unasked
            // (some browsers fire a change per option while arrowing through a closed list).
            const chosen = doc.components.length + Object.keys(doc.judgements ?? {}).length;
            if (chosen > 0 && !window.confirm("Changing the framework clears the areas you picked and their judgements. Change it?")) {
              rerender((n) => n + 1); // put the list back on the framework kept
              return;
            }
            change((d) => {
              d.framework = v;
              d.components.splice(0, d.components.length);
              for (const key of Object.keys(d.judgements)) delete d.judgements[key];
            });
          }}
        />
        <ComponentsField
          store={store}
          framework={doc.framework}
          label="Areas to look for"
          readLabel="Areas looked for"
          editable={observerEdits}
          chosen={doc.components}
          onToggle={toggleComponent}
        />
      </Section>

      <Section title="Observation">
        <TextField label="Notes" multiline editable={observerEdits} value={doc.notes} onInput={(v) => change((d) => setText(d, ["notes"], v))} hint="No names of children or family members." />
        <TextListField
          label="Strengths"
          itemLabel="Strength"
          editable={observerEdits}
          items={doc.strengths ?? []}
          onItem={(i, v) => change((d) => setText(d, ["strengths", i], v))}
          onAdd={() => change((d) => void d.strengths.push(""))}
          onRemove={(i) => change((d) => void d.strengths.splice(i, 1))}
        />
        <TextListField
          label="Development areas"
          itemLabel="Development area"
          editable={observerEdits}
          items={doc.developmentAreas ?? []}
          onItem={(i, v) => change((d) => setText(d, ["developmentAreas", i], v))}
          onAdd={() => change((d) => void d.developmentAreas.push(""))}
          onRemove={(i) => change((d) => void d.developmentAreas.splice(i, 1))}
        />
        <h3>Judgements</h3>
        {doc.components.length === 0 && <p>Choose areas under Focus to record a judgement for each.</p>}
        {doc.components.map((c) =>
          observerEdits ? (
            <fieldset key={c} class="radios">
              <legend>{store.componentTitle(c)}</legend>
              {JUDGEMENTS.map((j) => (
                <div class="field radio" key={j.value}>
                  <input
                    type="radio"
                    id={`j-${c}-${j.value}`}
                    name={`j-${c}`}
                    checked={doc.judgements?.[c] === j.value}
                    onChange={() => change((d) => void (d.judgements[c] = j.value))}
                  />
                  <label for={`j-${c}-${j.value}`}>{j.label}</label>
                </div>
              ))}
            </fieldset>
          ) : (
            <div class="field read-only" key={c}>
              <span class="label">{store.componentTitle(c)}</span>
              <p class="value">{JUDGEMENTS.find((j) => j.value === doc.judgements?.[c])?.label ?? "No judgement recorded"}</p>
            </div>
          ),
        )}
      </Section>

      {!isPractitioner && feedbackPart}

      <Section title="Actions">
        {(doc.actions ?? []).length === 0 && !observerEdits && <p>No actions recorded.</p>}
        {(doc.actions ?? []).map((action, i) => (
          <div class="action" key={action.id}>
            <TextField label={`Action ${i + 1}`} editable={observerEdits} value={action.text} onInput={(v) =>
                change((d) => {
                  const at = indexById(d.actions, action.id);
                  if (at >= 0) setText(d, ["actions", at, "text"], v);
                })
              } />
            <SelectField
              label={`Plan goal for action ${i + 1} (optional)`}
              editable={observerEdits}
              value={action.goalId}
              options={goals}
              placeholder="No linked goal"
              onChange={(v) =>
                change((d) => {
                  const at = indexById(d.actions, action.id);
                  if (at >= 0) setValue(d.actions[at] as never, "goalId", v);
                })
              }
            />
            {observerEdits && (
              <button type="button" class="secondary" onClick={() => change((d) => void d.actions.splice(i, 1))}>
                Remove action {i + 1}
              </button>
            )}
          </div>
        ))}
        {observerEdits && (
          <button type="button" class="secondary" onClick={() => change((d) => void d.actions.push({ id: newId(), text: "" }))}>
            Add action
          </button>
        )}
      </Section>

      {!isPractitioner && practitionerPart}

      <Section title="Sharing and sign-off">
        <ul class="signatures">
          <li>
            {doc.signOff?.observer
              ? `Signed off by the observer, ${nameOf(doc.signOff.observer.by)}, on ${formatDateTime(doc.signOff.observer.at)}.`
              : "Not yet signed off by the observer."}
          </li>
          <li>
            {doc.signOff?.practitioner
              ? `Signed off by the practitioner, ${nameOf(doc.signOff.practitioner.by)}, on ${formatDateTime(doc.signOff.practitioner.at)}.`
              : "Not yet signed off by the practitioner."}
          </li>
        </ul>
        {isObserver && observerEdits && doc.status === "draft" && (
          <>
            <p class="hint">Sharing lets {practitioner} read the record and add their reflection. You can still edit your part until you sign off.</p>
            <ConfirmButton
              label="Share with practitioner"
              question={`Share this record with ${practitioner}?`}
              consequence={`${practitioner} can then read it and add their reflection. It cannot go back to being a draft.`}
              yes="Share now"
              problems={sharingProblems(doc)}
              onConfirm={() => change((d) => void (d.status = "shared"))}
            />
          </>
        )}
        <DiscardDraft store={store} handle={handle} />
        {mayAct && mySide && !iSigned && (
          <>
            <p class="hint">
              {isObserver
                ? `Signing off confirms the record as it stands. Your part is then frozen; to change it you would withdraw your sign-off, which ${practitioner} sees.`
                : `Signing off confirms the whole record as you see it now. It is then frozen; to change your part you would withdraw your sign-off, which ${observer} sees.`}
            </p>
            <ConfirmButton
              label="Sign off"
              question="Sign off the record as it stands?"
              consequence={
                isObserver
                  ? `Your part is frozen. Once ${practitioner} has signed off too, nothing in the record can change.`
                  : `The record is frozen for you. Once ${observer} has signed off too, nothing in it can change.`
              }
              yes="Sign off now"
              onConfirm={signOff}
            />
          </>
        )}
        {mayAct && mySide && iSigned && (
          <>
            <p class="hint">Withdrawing your sign-off opens your part for changes again. {otherName} will see that you withdrew it.</p>
            <button type="button" class="secondary" onClick={withdrawSignOff}>
              Withdraw my sign-off
            </button>
          </>
        )}
      </Section>
    </article>
  );
}
