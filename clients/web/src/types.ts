// The record documents (field names are a public contract, see DOMAIN.md) and API shapes.
export type Judgement = "met" | "not-met" | "insufficient-opportunity";
export type Setting =
  | "home-visit"
  | "office-visit"
  | "virtual"
  | "meeting"
  | "child-protection-conference"
  | "court"
  | "supervision-session"
  | "other";

export interface Signature {
  at: string;
  by: string;
}

export interface Observation {
  type: "observation";
  schemaVersion: 1;
  practitionerId: string;
  observerId: string;
  observedAt?: string;
  setting?: Setting;
  present?: string;
  purpose?: string;
  consent?: { given?: boolean; by?: string; how?: string; withdrawnAt?: string };
  framework: string;
  components: string[];
  notes?: string;
  strengths: string[];
  developmentAreas: string[];
  judgements: Record<string, Judgement>;
  feedback?: string;
  feedbackGivenAt?: string;
  actions: { id: string; text: string; goalId?: string }[];
  reflection?: string;
  response?: string;
  familyVoice?: { text?: string; how?: string };
  status: "draft" | "shared" | "signed-off";
  signOff: { observer?: Signature; practitioner?: Signature };
}

export type GoalStatus = "not-started" | "in-progress" | "met" | "not-met" | "withdrawn";

export interface Goal {
  id: string;
  /** A register (see `setShort`); older records hold text. Read with `plainText`. */
  title?: string;
  components: string[];
  successMeasure?: string;
  targetDate?: string;
  support?: string;
  status: GoalStatus;
  completedAt?: string;
  evidence: string[];
  /** Research resource ids the goal cites. */
  resources?: string[];
}

export interface DevelopmentPlan {
  type: "development-plan";
  schemaVersion: 1;
  ownerId: string;
  supervisorId: string;
  framework: string;
  period?: { from?: string; to?: string };
  source?: string;
  gapAnalysis?: Record<string, unknown>;
  goals: Goal[];
  reviews?: { at: string; by: string; note: string }[];
  status: "draft" | "agreed" | "closed";
  /** The supervisor's agreement (replaced each time they agree, removed when they reopen the
   *  plan), with the owner's inside it. */
  agreement?: { at: string; by: string; owner?: { at: string; by: string } };
}

export type SessionKind = "group-supervision" | "team-development" | "practice-discussion";

/** Reflective group supervision, a team development session or a practice discussion. */
export interface GroupSession {
  type: "group-session";
  schemaVersion: 1;
  facilitatorId: string;
  participantIds: string[];
  heldAt?: string;
  kind: SessionKind;
  framework?: string;
  components: string[];
  themes: string[];
  summary?: string;
  actions: { id: string; text: string; ownerId?: string }[];
  /** Participant id → their own reflection. */
  reflections: Record<string, string>;
  status: "draft" | "shared" | "closed";
  closedAt?: string;
}

export type ThemeCategory = "practice" | "workload" | "environment" | "organisation";
export type ThemeStatus = "raised" | "acknowledged" | "acted" | "closed";

/** "You said, we did": a theme raised to managers, and what was done about it. */
export interface PracticeTheme {
  type: "practice-theme";
  schemaVersion: 1;
  raisedBy: string;
  raisedAt?: string;
  team?: string;
  category: ThemeCategory;
  framework?: string;
  components: string[];
  summary?: string;
  /** Aggregate counts: identifier label → number. */
  evidence: Record<string, number>;
  responses: { id: string; at: string; by: string; text: string }[];
  status: ThemeStatus;
}

export type RecordDoc = Observation | DevelopmentPlan | GroupSession | PracticeTheme;
export type RecordType = RecordDoc["type"];

export type Party =
  | "observer"
  | "practitioner"
  | "plan-owner"
  | "plan-supervisor"
  | "facilitator"
  | "participant"
  | "raiser"
  | "responder"
  | "line"
  | "principal-social-worker"
  | "team";

export interface IndexEntry {
  url: string;
  type: RecordType;
  status: string;
  party: Party;
  changeSeq: number;
  /** Created on this device and not yet listed by the server. */
  local?: boolean;
}

export interface Person {
  id: string;
  name: string;
  role: string;
  teamId?: string | null;
}

export interface People {
  supervisees: Person[];
  supervisors: Person[];
}

export interface Framework {
  id: string;
  title: string;
  version: string;
  publisher?: string;
  areas: { id: string; number: number; title: string; components: { id: string; title: string }[] }[];
}

/** A research resource (`GET /v1/resources`): a public publication tagged with framework ids. */
export interface Resource {
  id: string;
  title: string;
  url: string;
  publisher: string;
  components: string[];
  summary?: string;
  addedAt: string;
  retired: boolean;
}

/** Whether two framework ids are the same, or one is an area holding the other. */
export function relatedComponents(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}.`) || b.startsWith(`${a}.`);
}

export function isLocked(doc: Observation): boolean {
  return !!doc.signOff?.observer && !!doc.signOff?.practitioner;
}
