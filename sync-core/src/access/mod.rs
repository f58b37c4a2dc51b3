//! Who may read and write a record: need-to-know reads and per-field, per-party writes
//! (DOMAIN.md "Who writes what", "Data protection"). Pure functions over records and the
//! viewer's place in the organisation; the server supplies both from its database.

mod judge;
mod sign_off;
mod writes;

use std::fmt;
use std::str::FromStr;

use crate::records::{Record, dates};

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
}

/// How the viewer stands to one record. Only the first four write anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    Observer,
    Practitioner,
    PlanOwner,
    PlanSupervisor,
    /// A supervisor of the practitioner (now, or when the record was made), or above them.
    Line,
    PrincipalSocialWorker,
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
            Party::Line => "line",
            Party::PrincipalSocialWorker => "principal-social-worker",
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
            Party::Line => "line of supervision",
            Party::PrincipalSocialWorker => "principal social worker",
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
    pub observation: bool,
    /// The observer, or the plan's supervisor.
    pub author_id: String,
    /// The observed practitioner, or the plan's owner.
    pub subject_id: String,
    /// Drafts of observations stay with the observer.
    pub draft: bool,
    pub locked: bool,
    /// The dates the record is about: the observation day, or the plan's period.
    pub from: String,
    pub to: String,
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
            observation: true,
            author_id: observer_id.to_owned(),
            subject_id: practitioner_id.to_owned(),
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
            observation: false,
            author_id: supervisor_id.to_owned(),
            subject_id: owner_id.to_owned(),
            draft: false,
            locked: status == "closed",
            from,
            to,
        }
    }
}

impl Viewer {
    /// The viewer's part in a record on `today` (`YYYY-MM-DD`).
    pub fn party(&self, facts: &RecordFacts, today: &str) -> Party {
        if !self.role.works_with_records() {
            return Party::None;
        }
        let me = self.user_id.as_str();
        if facts.observation {
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
        let in_line = self
            .line
            .iter()
            .filter(|g| g.subject_id == facts.subject_id)
            .any(|g| g.covers(today) || g.overlaps(&facts.from, &facts.to));
        if in_line {
            Party::Line
        } else if self.role == Role::PrincipalSocialWorker {
            Party::PrincipalSocialWorker
        } else {
            Party::None
        }
    }

    pub fn may_read(&self, facts: &RecordFacts, today: &str) -> bool {
        self.party(facts, today) != Party::None
    }
}

#[cfg(test)]
mod tests;
