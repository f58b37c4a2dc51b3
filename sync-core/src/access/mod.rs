//! Who may read and write a record: need-to-know reads and per-field, per-party writes
//! (DOMAIN.md "Who writes what", "Data protection"). Pure functions over records and the
//! viewer's place in the organisation; the server supplies both from its database.

mod judge;
mod sign_off;
mod writes;

use std::fmt;
use std::str::FromStr;

use crate::records::{Record, RecordKind, dates};

pub use judge::{Judgement, Proposal, Stored, judge};
pub use writes::{WriteCheck, check_write};

/// A user's role in the organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Practitioner,
    Supervisor,
    Manager,
    PrincipalSocialWorker,
    Hr,
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] =
        [Role::Practitioner, Role::Supervisor, Role::Manager, Role::PrincipalSocialWorker, Role::Hr, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Practitioner => "practitioner",
            Role::Supervisor => "supervisor",
            Role::Manager => "manager",
            Role::PrincipalSocialWorker => "principal-social-worker",
            Role::Hr => "hr",
            Role::Admin => "admin",
        }
    }

    /// HR and admins never read or write records over sync: HR gets the minimised API,
    /// admins manage people and devices, not practice.
    pub fn works_with_records(self) -> bool {
        !matches!(self, Role::Hr | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            format!("unknown role {s:?}; expected one of {}", names.join(", "))
        })
    }
}

/// A span of dates (`YYYY-MM-DD`, `to` exclusive, open while `None`) in which the viewer
/// was in `subject_id`'s line of supervision: their supervisor, or above them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineGrant {
    pub subject_id: String,
    pub from: String,
    pub to: Option<String>,
}

impl LineGrant {
    fn covers(&self, day: &str) -> bool {
        self.from.as_str() <= day && self.to.as_deref().is_none_or(|to| day < to)
    }

    fn overlaps(&self, from: &str, to: &str) -> bool {
        self.from.as_str() <= to && self.to.as_deref().is_none_or(|end| from < end)
    }
}

/// The person asking, as the server knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: String,
    pub role: Role,
    pub line: Vec<LineGrant>,
    /// Their team now: its members read the practice themes raised for it.
    pub team: Option<String>,
}

/// How the viewer stands to one record. Line, principal social worker (on records about
/// one practitioner), team and none write nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    Observer,
    Practitioner,
    PlanOwner,
    PlanSupervisor,
    /// Runs a group session.
    Facilitator,
    /// One of a group session's participants.
    Participant,
    /// Raised a practice theme.
    Raiser,
    /// A manager above a theme's raiser, or a principal social worker: answers the theme.
    Responder,
    /// A supervisor of the practitioner (now, or when the record was made), or above them.
    Line,
    PrincipalSocialWorker,
    /// A member of the team a practice theme was raised for.
    Team,
    /// Not entitled to know the record exists.
    None,
}

impl Party {
    /// A stable id, as APIs and the audit trail show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Party::Observer => "observer",
            Party::Practitioner => "practitioner",
            Party::PlanOwner => "plan-owner",
            Party::PlanSupervisor => "plan-supervisor",
            Party::Facilitator => "facilitator",
            Party::Participant => "participant",
            Party::Raiser => "raiser",
            Party::Responder => "responder",
            Party::Line => "line",
            Party::PrincipalSocialWorker => "principal-social-worker",
            Party::Team => "team",
            Party::None => "none",
        }
    }

    /// For messages: "the {}" may not change …
    pub fn describe(self) -> &'static str {
        match self {
            Party::Observer => "observer",
            Party::Practitioner => "practitioner",
            Party::PlanOwner => "plan owner",
            Party::PlanSupervisor => "plan supervisor",
            Party::Facilitator => "facilitator",
            Party::Participant => "participant",
            Party::Raiser => "raiser of the theme",
            Party::Responder => "responder",
            Party::Line => "line of supervision",
            Party::PrincipalSocialWorker => "principal social worker",
            Party::Team => "team",
            Party::None => "no access",
        }
    }
}

/// The day of a record that names none (no `observedAt`, no `period`): before anyone's
/// supervision, so only the current line reads it, and that does not move from day to day.
const NO_DAY: &str = "0000-01-01";

/// What access depends on, kept per loaded document so checks need no parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFacts {
    pub kind: RecordKind,
    /// The observer, the plan's supervisor, the session's facilitator, the theme's raiser.
    pub author_id: String,
    /// The observed practitioner, or the plan's owner; the author of a session or theme.
    pub subject_id: String,
    /// A group session's participants.
    pub members: Vec<String>,
    /// A practice theme's team.
    pub team: Option<String>,
    /// Drafts of observations and group sessions stay with their author.
    pub draft: bool,
    pub locked: bool,
    /// The dates the record is about: the observation day, the plan's period, the day a
    /// session was held or a theme raised.
    pub from: String,
    pub to: String,
}

/// Why a record may not be discarded (see [`RecordFacts::discard_by`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscardRefusal {
    /// Only its author may discard a draft (nobody else sees one).
    NotAuthor,
    /// It was shared, or is not a kind of record that has drafts.
    NotDraft,
}

impl fmt::Display for DiscardRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DiscardRefusal::NotAuthor => "only the person who wrote a draft may discard it",
            DiscardRefusal::NotDraft => {
                "only a draft may be discarded: this record was shared, so it is kept (retention, or an admin \
                 with a reason, deletes it)"
            }
        })
    }
}

impl RecordFacts {
    pub fn of(record: &Record) -> Self {
        match record {
            Record::Observation(o) => Self::observation(
                &o.observer_id,
                &o.practitioner_id,
                &o.status,
                o.observed_at.as_deref(),
                record.is_locked(),
            ),
            Record::DevelopmentPlan(p) => {
                let period = p.period.clone().unwrap_or_default();
                Self::plan(&p.supervisor_id, &p.owner_id, &p.status, period.from.as_deref(), period.to.as_deref())
            }
            Record::GroupSession(g) => {
                Self::group_session(&g.facilitator_id, g.participant_ids.clone(), &g.status, g.held_at.as_deref())
            }
            Record::PracticeTheme(t) => {
                Self::practice_theme(&t.raised_by, t.team.clone(), &t.status, t.raised_at.as_deref())
            }
        }
    }

    /// The facts of a stored record, read from the few fields they come from rather than by
    /// parsing the whole record (documents load far more often than they change). `None`
    /// if it is not a record.
    pub fn of_document(doc: &impl automerge::ReadDoc) -> Option<Self> {
        use crate::json::{is_set, string_at};
        let get = |key: &str| string_at(doc, &[key]);
        match get("type")?.as_str() {
            crate::records::OBSERVATION => Some(Self::observation(
                &get("observerId")?,
                &get("practitionerId")?,
                &get("status")?,
                get("observedAt").as_deref(),
                is_set(doc, &["signOff", "observer"]) && is_set(doc, &["signOff", "practitioner"]),
            )),
            crate::records::DEVELOPMENT_PLAN => Some(Self::plan(
                &get("supervisorId")?,
                &get("ownerId")?,
                &get("status")?,
                string_at(doc, &["period", "from"]).as_deref(),
                string_at(doc, &["period", "to"]).as_deref(),
            )),
            crate::records::GROUP_SESSION => {
                // Optional in the schema: a session may name nobody yet.
                let participants = crate::json::field_json(doc, "participantIds").unwrap_or_default();
                let participants = match &participants {
                    serde_json::Value::Null => Vec::new(),
                    list => list.as_array()?.clone(),
                };
                let participants = participants.iter().map(|p| p.as_str().map(str::to_owned));
                Some(Self::group_session(
                    &get("facilitatorId")?,
                    participants.collect::<Option<Vec<_>>>()?,
                    &get("status")?,
                    get("heldAt").as_deref(),
                ))
            }
            crate::records::PRACTICE_THEME => {
                Some(Self::practice_theme(&get("raisedBy")?, get("team"), &get("status")?, get("raisedAt").as_deref()))
            }
            _ => None,
        }
    }

    /// An observation's facts from its fields (as the central store keeps them, too).
    pub fn observation(
        observer_id: &str,
        practitioner_id: &str,
        status: &str,
        observed_at: Option<&str>,
        locked: bool,
    ) -> Self {
        let day = observed_at.and_then(dates::utc_day).unwrap_or_else(|| NO_DAY.to_owned());
        RecordFacts {
            kind: RecordKind::Observation,
            author_id: observer_id.to_owned(),
            subject_id: practitioner_id.to_owned(),
            members: Vec::new(),
            team: None,
            draft: status == "draft",
            locked,
            from: day.clone(),
            to: day,
        }
    }

    /// A development plan's facts from its fields.
    pub fn plan(supervisor_id: &str, owner_id: &str, status: &str, from: Option<&str>, to: Option<&str>) -> Self {
        let from = from.and_then(dates::utc_day).unwrap_or_else(|| NO_DAY.to_owned());
        let to = to.and_then(dates::utc_day).unwrap_or_else(|| from.clone());
        RecordFacts {
            kind: RecordKind::DevelopmentPlan,
            author_id: supervisor_id.to_owned(),
            subject_id: owner_id.to_owned(),
            members: Vec::new(),
            team: None,
            draft: false,
            locked: status == "closed",
            from,
            to,
        }
    }

    /// A group session's facts from its fields.
    pub fn group_session(facilitator_id: &str, participants: Vec<String>, status: &str, held_at: Option<&str>) -> Self {
        let day = held_at.and_then(dates::utc_day).unwrap_or_else(|| NO_DAY.to_owned());
        RecordFacts {
            kind: RecordKind::GroupSession,
            author_id: facilitator_id.to_owned(),
            subject_id: facilitator_id.to_owned(),
            members: participants,
            team: None,
            draft: status == "draft",
            locked: status == "closed",
            from: day.clone(),
            to: day,
        }
    }

    /// A practice theme's facts from its fields.
    pub fn practice_theme(raised_by: &str, team: Option<String>, status: &str, raised_at: Option<&str>) -> Self {
        let day = raised_at.and_then(dates::utc_day).unwrap_or_else(|| NO_DAY.to_owned());
        RecordFacts {
            kind: RecordKind::PracticeTheme,
            author_id: raised_by.to_owned(),
            subject_id: raised_by.to_owned(),
            members: Vec::new(),
            team,
            draft: false,
            locked: status == "closed",
            from: day.clone(),
            to: day,
        }
    }

    /// Whether `user_id` may discard the record: only a draft (an observation or group
    /// session nobody else has seen), only by its author. Anything shared is part of the
    /// record: retention, or an admin with a reason, deletes it.
    pub fn discard_by(&self, user_id: &str) -> Result<(), DiscardRefusal> {
        if self.author_id != user_id {
            Err(DiscardRefusal::NotAuthor)
        } else if !self.draft {
            Err(DiscardRefusal::NotDraft)
        } else {
            Ok(())
        }
    }

    /// Everyone whose line of supervision reads the record.
    fn people(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.subject_id.as_str()).chain(self.members.iter().map(String::as_str))
    }
}

impl Viewer {
    /// The viewer's part in a record on `today` (`YYYY-MM-DD`).
    pub fn party(&self, facts: &RecordFacts, today: &str) -> Party {
        if !self.role.works_with_records() {
            return Party::None;
        }
        let me = self.user_id.as_str();
        let in_line = || {
            facts.people().any(|person| {
                self.line
                    .iter()
                    .filter(|g| g.subject_id == person)
                    .any(|g| g.covers(today) || g.overlaps(&facts.from, &facts.to))
            })
        };
        match facts.kind {
            RecordKind::Observation | RecordKind::DevelopmentPlan => {
                if facts.kind == RecordKind::Observation {
                    if me == facts.author_id {
                        return Party::Observer;
                    }
                    if facts.draft {
                        return Party::None;
                    }
                    if me == facts.subject_id {
                        return Party::Practitioner;
                    }
                } else if me == facts.subject_id {
                    return Party::PlanOwner;
                } else if me == facts.author_id {
                    return Party::PlanSupervisor;
                }
                if in_line() {
                    Party::Line
                } else if self.role == Role::PrincipalSocialWorker {
                    Party::PrincipalSocialWorker
                } else {
                    Party::None
                }
            }
            // The facilitator, the participants once shared, and the lines of them all.
            RecordKind::GroupSession => {
                if me == facts.author_id {
                    Party::Facilitator
                } else if facts.draft {
                    Party::None
                } else if facts.members.iter().any(|m| m == me) {
                    Party::Participant
                } else if in_line() {
                    Party::Line
                } else {
                    Party::None
                }
            }
            // The raiser; managers above them and principal social workers answer; anyone
            // else above them and the theme's team read.
            RecordKind::PracticeTheme => {
                let in_line = in_line();
                if me == facts.author_id {
                    Party::Raiser
                } else if (in_line && self.role == Role::Manager) || self.role == Role::PrincipalSocialWorker {
                    Party::Responder
                } else if in_line {
                    Party::Line
                } else if facts.team.is_some() && facts.team == self.team {
                    Party::Team
                } else {
                    Party::None
                }
            }
        }
    }

    /// Whether the viewer is in `user_id`'s line of supervision on `today`.
    pub fn supervises_now(&self, user_id: &str, today: &str) -> bool {
        self.line.iter().any(|g| g.subject_id == user_id && g.covers(today))
    }

    pub fn may_read(&self, facts: &RecordFacts, today: &str) -> bool {
        self.party(facts, today) != Party::None
    }
}

#[cfg(test)]
mod tests;
