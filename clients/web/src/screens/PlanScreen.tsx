// A development plan: goals with their status and the observations that evidence them. The
// plan's supervisor shapes the goals and agrees the plan; its owner updates goal progress.
import type { DocHandle } from "@automerge/automerge-repo/slim";
import { formatDate, formatDateTime, indexById, newId, plainText, putBackField, setShort, setText, setValue } from "../edit";
import { type RecordStore, useStore } from "../records";
import { observationHref } from "../router";
import type { Me } from "../session";
import type { DevelopmentPlan, Goal, GoalStatus, Observation } from "../types";
import { SelectField, TextField } from "../ui/fields";
import { AsyeProgress } from "../ui/asye-progress";
import { GoalResources } from "../ui/goal-resources";
import { ConfirmButton } from "../ui/confirm-button";
import { ShortField } from "../ui/short-field";
import { Rejections, SetAsideWork, SyncText, useRefused } from "../ui/record-status";
import { planTurn } from "../turn";
import { Missing, useRecord } from "./ObservationScreen";

const GOAL_STATUSES: { value: GoalStatus; label: string }[] = [
  { value: "not-started", label: "Not started" },
  { value: "in-progress", label: "In progress" },
  { value: "met", label: "Met" },
  { value: "not-met", label: "Not met" },
  { value: "withdrawn", label: "Withdrawn" },
];

export function PlanScreen({ store, me, documentId }: { store: RecordStore; me: Me; documentId: string }) {
  useStore(store);
  const { handle, doc, missing } = useRecord<DevelopmentPlan>(store, documentId);
  const refused = useRefused(documentId, store.onServer(`automerge:${documentId}`));
  if (!handle || !doc || doc.type !== "development-plan") return <Missing missing={missing} />;

  const change = (fn: (d: DevelopmentPlan) => void) => store.change(handle, fn);
  const isOwner = doc.ownerId === me.id;
  const isSupervisor = doc.supervisorId === me.id;
  const nameOf = (id: string) => (id === me.id ? "you" : store.personName(id));
  const open = doc.status !== "closed" && !refused;
  // An agreed plan's goals are settled (the server holds the same rule) until the supervisor
  // reopens it for review; progress on them goes on.
  const shapes = isSupervisor && open && doc.status === "draft";
  const progresses = (isOwner || isSupervisor) && open;
  const observations = store
    .entries()
    .filter((e) => e.doc?.type === "observation")
    .map((e) => ({ url: e.entry.url, doc: e.doc as Observation }));
  const framework = store.framework(doc.framework);
  const lastReview = (doc.reviews ?? []).at(-1);
  const areas = framework?.areas.map((a) => ({ value: a.id, label: `${a.number}. ${a.title}` })) ?? [];

  const evidenceFor = (goal: Goal) => {
    const urls = new Set(goal.evidence ?? []);
    for (const o of observations) if ((o.doc.actions ?? []).some((a) => a.goalId === goal.id)) urls.add(o.url);
    return [...urls];
  };
  const describe = (url: string) => {
    const o = observations.find((x) => x.url === url)?.doc;
    if (!o) return "An observation not on this device";
    return `Observation by ${store.personName(o.observerId)}${o.observedAt ? `, ${formatDateTime(o.observedAt)}` : ""}`;
  };

  return (
    <article class="record">
      <p class="no-print">
        <a href="#/">Back to home</a>
      </p>
      <h1 tabIndex={-1}>{isOwner ? "Your development plan" : `Development plan of ${store.personName(doc.ownerId)}`}</h1>
      <div class="record-state">
        <p>
          Status: <strong>{planTurn(doc, me.id, (id) => store.personName(id))}</strong>. Supervisor: {isSupervisor ? `${me.name} (you)` : store.personName(doc.supervisorId)}.
          {doc.period?.from && ` Period ${formatDate(doc.period.from)} to ${formatDate(doc.period.to)}.`}
        </p>
        <p>Framework: {framework ? `${framework.title} (${framework.version})` : doc.framework}</p>
        {doc.agreement && (
          <p>
            Agreed by {nameOf(doc.agreement.by)} on {formatDateTime(doc.agreement.at)}
            {doc.agreement.owner ? ` and by ${nameOf(doc.agreement.owner.by)} on ${formatDateTime(doc.agreement.owner.at)}.` : "."}
          </p>
        )}
        {lastReview && (
          <p>
            Last review: {formatDate(lastReview.at)}, {nameOf(lastReview.by)} — {lastReview.note}
          </p>
        )}
        <SyncText handle={handle as DocHandle<unknown>} live />
        <Rejections
          documentId={handle.documentId}
          askWho={isSupervisor ? "admin" : "supervisor"}
          onServer={store.onServer(handle.url)}
        />
        <SetAsideWork
          documentId={handle.documentId}
          current={doc as unknown as Record<string, unknown>}
          putBack={(field, value) => change((d) => putBackField(d as never, field, value))}
        />
      </div>

      {doc.source === "early-career-programme" && <AsyeProgress userId={doc.ownerId} />}

      <section class="card" aria-labelledby="goals-heading">
        <h2 id="goals-heading">Goals</h2>
        {(doc.goals ?? []).length === 0 && <p>No goals yet.{isOwner ? " Your supervisor adds them with you." : ""}</p>}
        {(doc.goals ?? []).map((goal, i) => {
          const evidence = evidenceFor(goal);
          const n = i + 1;
          return (
            <div class="goal" key={goal.id}>
              <h3>
                Goal {n}: {plainText(goal.title) || "Untitled goal"}
              </h3>
              {shapes && (
                <ShortField
                  label={`Goal ${n} title`}
                  editable
                  parent={goal}
                  field="title"
                  onSet={(v) =>
                    change((d) => {
                      const at = indexById(d.goals, goal.id);
                      if (at >= 0) setShort(d, ["goals", at, "title"], v);
                    })
                  }
                />
              )}
              <TextField label={`Goal ${n}: how we will know it is met`} editable={shapes} value={goal.successMeasure} onInput={(v) => change((d) => {
                    const at = indexById(d.goals, goal.id);
                    if (at >= 0) setText(d, ["goals", at, "successMeasure"], v);
                  })} />
              <TextField
                label={`Goal ${n}: target date`}
                type="date"
                editable={shapes}
                value={goal.targetDate}
                display={formatDate(goal.targetDate)}
                onInput={(v) => change((d) => {
                    const at = indexById(d.goals, goal.id);
                    if (at >= 0) setValue(d.goals[at] as never, "targetDate", v);
                  })}
              />
              <TextField label={`Goal ${n}: support`} editable={shapes} value={goal.support} onInput={(v) => change((d) => {
                    const at = indexById(d.goals, goal.id);
                    if (at >= 0) setText(d, ["goals", at, "support"], v);
                  })} />
              <SelectField
                label={`Goal ${n}: area`}
                editable={shapes}
                value={goal.components?.[0]}
                options={areas}
                placeholder="No area chosen"
                onChange={(v) =>
                  change((d) => {
                    const at = indexById(d.goals, goal.id);
                    if (at < 0) return;
                    const list = d.goals[at].components;
                    list.splice(0, list.length, ...(v ? [v] : []));
                  })
                }
              />
              <SelectField
                label={`Goal ${n}: status`}
                editable={progresses}
                value={goal.status}
                options={GOAL_STATUSES}
                onChange={(v) =>
                  v &&
                  change((d) => {
                    const g = d.goals[indexById(d.goals, goal.id)];
                    if (!g) return;
                    g.status = v as GoalStatus;
                    if (v === "met") g.completedAt = new Date().toISOString();
                    else if (g.completedAt !== undefined) delete g.completedAt;
                  })
                }
              />
              {goal.completedAt && <p>Completed on {formatDate(goal.completedAt)}.</p>}
              {shapes && (
                <button
                  type="button"
                  class="secondary"
                  onClick={() =>
                    change((d) => {
                      const at = indexById(d.goals, goal.id);
                      if (at >= 0) d.goals.splice(at, 1);
                    })
                  }
                >
                  Remove goal {n}
                </button>
              )}
              <h4>Evidence</h4>
              {evidence.length === 0 ? (
                <p>No observation evidences this goal yet.</p>
              ) : (
                <ul>
                  {evidence.map((url) => (
                    <li key={url}>
                      <a href={observationHref(url)}>{describe(url)}</a>
                    </li>
                  ))}
                </ul>
              )}
              <GoalResources
                store={store}
                goal={goal}
                label={`Goal ${n}`}
                editable={progresses}
                onCite={(id) =>
                  change((d) => {
                    const g = d.goals[indexById(d.goals, goal.id)];
                    if (!g) return;
                    if (!g.resources) g.resources = [];
                    if (!g.resources.includes(id)) g.resources.push(id);
                  })
                }
                onRemove={(id) =>
                  change((d) => {
                    const list = d.goals[indexById(d.goals, goal.id)]?.resources;
                    const at = list?.indexOf(id) ?? -1;
                    if (list && at >= 0) list.splice(at, 1);
                  })
                }
              />
            </div>
          );
        })}
        {shapes && (
          <button
            type="button"
            class="secondary"
            onClick={() => change((d) => void d.goals.push({ id: newId(), components: [], status: "not-started", evidence: [] }))}
          >
            Add goal
          </button>
        )}
      </section>

      {isSupervisor && doc.status === "agreed" && !refused && (
        <section class="card no-print" aria-labelledby="review-heading">
          <h2 id="review-heading">Review the plan</h2>
          <p class="hint">The goals are agreed and settled. To change them, reopen the plan for review with {store.personName(doc.ownerId)}, then agree it again.</p>
          <ConfirmButton
            label="Reopen for review"
            question="Reopen the plan for review?"
            consequence={`The plan goes back to draft so you can change its goals; ${store.personName(doc.ownerId)} sees that it was reopened. Agree it again when you have talked it through.`}
            yes="Reopen now"
            onConfirm={() =>
              change((d) => {
                d.status = "draft";
                delete d.agreement; // both agree again once it is talked through
                (d.reviews ??= []).push({ at: new Date().toISOString(), by: me.id, note: "Reopened for review" });
              })
            }
          />
        </section>
      )}
      {isSupervisor && doc.status === "draft" && (
        <section class="card" aria-labelledby="agree-heading">
          <h2 id="agree-heading">Agree the plan</h2>
          <p class="hint">Agree the plan once you and {store.personName(doc.ownerId)} have talked the goals through.</p>
          <ConfirmButton
            label="Agree plan"
            question={`Agree this plan with ${store.personName(doc.ownerId)}?`}
            consequence={`${store.personName(doc.ownerId)} sees it as agreed and works on the goals; it can still be reviewed later.`}
            yes="Agree the plan now"
            problems={(doc.goals ?? []).length === 0 ? ["Add at least one goal."] : []}
            onConfirm={() =>
              change((d) => {
                d.status = "agreed";
                d.agreement = { at: new Date().toISOString(), by: me.id };
              })
            }
          />
        </section>
      )}
      {isOwner && doc.status === "agreed" && doc.agreement && !doc.agreement.owner && !refused && (
        <section class="card no-print" aria-labelledby="owner-agrees-heading">
          <h2 id="owner-agrees-heading">Agree the plan</h2>
          <p class="hint">{store.personName(doc.supervisorId)} has agreed the plan. Agree it too once you are happy with the goals.</p>
          <ConfirmButton
            label="Agree plan"
            question="Agree this plan?"
            consequence={`You and ${store.personName(doc.supervisorId)} both agree the goals as they stand. To change them later, your supervisor reopens the plan for review, and you both agree it again.`}
            yes="Agree the plan now"
            onConfirm={() => change((d) => void (d.agreement!.owner = { at: new Date().toISOString(), by: me.id }))}
          />
        </section>
      )}
    </article>
  );
}
