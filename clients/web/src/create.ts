// Creating records. Every field another party writes later (signOff, familyVoice) exists from
// the start, because the server lets them write only inside it; and every prose field exists as
// empty text, so two devices that each write it first offline merge their text instead of
// automerge keeping one new text object and hiding the other.
import type { DocHandle } from "@automerge/automerge-repo/slim";
import { currentRepo } from "./repo";
import type { RecordStore } from "./records";
import type { Me } from "./session";
import type { DevelopmentPlan, GroupSession, Observation, PracticeTheme, RecordDoc, SessionKind, ThemeCategory } from "./types";

export function createObservation(store: RecordStore, me: Me, practitionerId: string, framework: string): DocHandle<Observation> {
  const handle = currentRepo().create<Observation>({
    type: "observation",
    schemaVersion: 1,
    practitionerId,
    observerId: me.id,
    // Most observations are recorded during or just after the visit.
    observedAt: new Date(Math.floor(Date.now() / 60_000) * 60_000).toISOString(),
    framework,
    components: [],
    status: "draft",
    signOff: {},
    // Short fields (`present`, `purpose`, `consent.by`, `consent.how`) are registers, written
    // when first set (see `setShort`): nothing to lay out for them.
    consent: {},
    notes: "",
    feedback: "",
    reflection: "",
    response: "",
    familyVoice: { text: "", how: "" },
    strengths: [],
    developmentAreas: [],
    judgements: {},
    actions: [],
  });
  store.addLocal(handle as DocHandle<RecordDoc>, { type: "observation", status: "draft", party: "observer" });
  return handle;
}

export function createPlan(store: RecordStore, me: Me, ownerId: string, framework: string): DocHandle<DevelopmentPlan> {
  const today = new Date();
  const nextYear = new Date(today);
  nextYear.setFullYear(today.getFullYear() + 1);
  const day = (d: Date) => d.toISOString().slice(0, 10);
  const handle = currentRepo().create<DevelopmentPlan>({
    type: "development-plan",
    schemaVersion: 1,
    ownerId,
    supervisorId: me.id,
    framework,
    period: { from: day(today), to: day(nextYear) },
    source: "supervision",
    gapAnalysis: {},
    goals: [],
    reviews: [],
    status: "draft",
  });
  store.addLocal(handle as DocHandle<RecordDoc>, { type: "development-plan", status: "draft", party: "plan-supervisor" });
  return handle;
}

/** A group session, a draft until the facilitator shares it with the participants; each
 *  participant's reflection is laid out empty once they are chosen (see GroupSessionScreen). */
export function createGroupSession(store: RecordStore, me: Me, kind: SessionKind, framework: string): DocHandle<GroupSession> {
  const handle = currentRepo().create<GroupSession>({
    type: "group-session",
    schemaVersion: 1,
    facilitatorId: me.id,
    participantIds: [],
    heldAt: new Date().toISOString(),
    kind,
    framework,
    components: [],
    themes: [],
    summary: "",
    actions: [],
    reflections: {},
    status: "draft",
  });
  store.addLocal(handle as DocHandle<RecordDoc>, { type: "group-session", status: "draft", party: "facilitator" });
  return handle;
}

export function createTheme(store: RecordStore, me: Me, category: ThemeCategory): DocHandle<PracticeTheme> {
  const handle = currentRepo().create<PracticeTheme>({
    type: "practice-theme",
    schemaVersion: 1,
    raisedBy: me.id,
    raisedAt: new Date().toISOString(),
    ...(me.teamId ? { team: me.teamId } : {}),
    category,
    components: [],
    summary: "",
    evidence: {},
    responses: [],
    status: "raised",
  });
  store.addLocal(handle as DocHandle<RecordDoc>, { type: "practice-theme", status: "raised", party: "raiser" });
  return handle;
}
