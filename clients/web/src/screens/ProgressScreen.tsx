// One person's progress against their framework, from the records on this device: for each
// area, the observations that looked at it, those signed off by both that judged it met, and
// the plan goals on it — each with the records behind the count.
import { formatDate, plainText } from "../edit";
import { type RecordStore, useStore } from "../records";
import { observationHref, planHref } from "../router";
import type { Me } from "../session";
import { type DevelopmentPlan, isLocked, type Observation, relatedComponents } from "../types";

interface Evidence {
  href: string;
  label: string;
}

export function ProgressScreen({ store, me, userId }: { store: RecordStore; me: Me; userId: string }) {
  useStore(store);
  const name = userId === me.id ? "Your" : `${store.personName(userId)}'s`;
  const observations = store
    .entries()
    .filter((e) => e.doc?.type === "observation" && (e.doc as Observation).practitionerId === userId)
    .map((e) => ({ url: e.entry.url, doc: e.doc as Observation }));
  const plans = store
    .entries()
    .filter((e) => e.doc?.type === "development-plan" && (e.doc as DevelopmentPlan).ownerId === userId)
    .map((e) => ({ url: e.entry.url, doc: e.doc as DevelopmentPlan }));
  const used = new Set([...observations.map((o) => o.doc.framework), ...plans.map((p) => p.doc.framework)]);
  const frameworks = store.frameworks.filter((f) => used.has(f.id));
  const on = (components: string[] | undefined, area: string) => (components ?? []).some((c) => relatedComponents(c, area));
  const observed = (o: { url: string; doc: Observation }): Evidence => ({
    href: observationHref(o.url),
    label: `Observation by ${o.doc.observerId === me.id ? "you" : store.personName(o.doc.observerId)}${o.doc.observedAt ? `, ${formatDate(o.doc.observedAt)}` : ""}`,
  });

  return (
    <div>
      <p class="no-print">
        <a href="#/find">Back to find records</a>
      </p>
      <h1 tabIndex={-1}>{name} progress</h1>
      <p class="hint">From the records on this device. "Met" counts observations signed off by both that judged the area met.</p>
      {frameworks.length === 0 && <p>No observations or plans of {userId === me.id ? "yours" : store.personName(userId)} are on this device.</p>}
      {frameworks.map((framework) => (
        <section class="card" key={framework.id} aria-labelledby={`progress-${framework.id}`}>
          <h2 id={`progress-${framework.id}`}>{framework.title}</h2>
          <ul class="list progress">
            {framework.areas.map((area) => {
              const looked = observations.filter((o) => o.doc.framework === framework.id && on(o.doc.components, area.id));
              const met = looked.filter(
                (o) => isLocked(o.doc) && Object.entries(o.doc.judgements ?? {}).some(([c, j]) => j === "met" && relatedComponents(c, area.id)),
              );
              const goals = plans.flatMap((p) =>
                (p.doc.goals ?? [])
                  .filter((g) => on(g.components, area.id))
                  .map((g): Evidence => ({ href: planHref(p.url), label: `Goal: ${plainText(g.title) || "Untitled goal"} (${g.status})` })),
              );
              const evidence = [...looked.map(observed), ...goals];
              return (
                <li key={area.id} class="list-row" aria-label={`${area.number}. ${area.title}`}>
                  <span class="name">
                    {area.number}. {area.title}
                  </span>
                  <p class="meta">
                    Observed {looked.length} · met {met.length} · planned {goals.length}
                  </p>
                  {evidence.length > 0 && (
                    <ul>
                      {evidence.map((e) => (
                        <li key={`${e.href}-${e.label}`}>
                          <a href={e.href}>{e.label}</a>
                        </li>
                      ))}
                    </ul>
                  )}
                </li>
              );
            })}
          </ul>
        </section>
      ))}
    </div>
  );
}
