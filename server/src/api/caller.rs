//! Who calls the development-records API: a service account (a system, by key and scopes)
//! or a person (by access token; HR and admins read records, see `Caller::require`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::Value;

use crate::auth::{self, Authenticated};
use crate::error::AppError;
use crate::org::SERVICE_KEY_PREFIX;
use crate::state::AppState;
use crate::storage::{AuditEvent, Role, Scope, ServiceAccount};

pub enum Caller {
    Service(ServiceAccount),
    Person(Authenticated),
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Self::identify(parts, state).await?;
        match &caller {
            Caller::Service(_) => crate::telemetry::record_caller(&caller.key(), None),
            Caller::Person(p) => crate::telemetry::record_caller(&p.user.id, p.device.as_deref()),
        }
        if let Err(wait) = state.api_rate_limit.check(&caller.key()) {
            return Err(AppError::TooManyRequests {
                detail: format!(
                    "over {} calls a minute; try again in {:.1} s",
                    state.limits.api_calls_per_minute,
                    wait.as_secs_f64()
                ),
                retry_after: wait.as_secs_f64().ceil() as u64,
                code: None,
            });
        }
        Ok(caller)
    }
}

impl Caller {
    async fn identify(parts: &Parts, state: &AppState) -> Result<Self, AppError> {
        let token = auth::bearer_token(parts).ok_or_else(|| {
            AppError::unauthorized("missing credentials: send `Authorization: Bearer <key or token>`")
        })?;
        if token.starts_with(SERVICE_KEY_PREFIX) {
            let hash = auth::tokens::secret_hash(&token);
            let account = state.db.service_account_by_key(&hash).await?;
            return match account {
                Some(account) if account.revoked_at.is_none() => Ok(Caller::Service(account)),
                Some(_) => Err(AppError::unauthorized("this service account was revoked")),
                None => Err(AppError::unauthorized("unknown service-account key (rotated?)")),
            };
        }
        Ok(Caller::Person(auth::authenticate(state, &token).await?))
    }

    /// Who is rate-limited (and audited) as one.
    fn key(&self) -> String {
        match self {
            Caller::Service(account) => format!("service:{}", account.id),
            Caller::Person(p) => p.user.id.clone(),
        }
    }

    /// Refuses a caller without `scope`. People read development records if they are HR or
    /// admins; insights are for supervisors and managers (their line), principal social
    /// workers and admins.
    pub fn require(&self, scope: Scope) -> Result<(), AppError> {
        let allowed = match (self, scope) {
            (Caller::Service(account), scope) => account.may(scope),
            (Caller::Person(p), Scope::HrRead) => matches!(p.user.role, Role::Hr | Role::Admin),
            (Caller::Person(p), Scope::InsightsRead) => {
                matches!(p.user.role, Role::Supervisor | Role::Manager | Role::PrincipalSocialWorker | Role::Admin)
            }
            // Provisioning is for the identity provider's account alone.
            (Caller::Person(_), Scope::Scim) => false,
        };
        if allowed { Ok(()) } else { Err(AppError::Forbidden(format!("this needs the {scope} scope"))) }
    }

    /// An audit event for an API read by this caller.
    pub fn event(&self, action: &'static str, detail: Value) -> AuditEvent {
        match self {
            Caller::Service(_) => {
                let mut event = AuditEvent::new(action).detail(detail);
                event.user_id = Some(self.key());
                event
            }
            Caller::Person(p) => AuditEvent::new(action).by(&p.user.id, p.device.as_deref()).detail(detail),
        }
    }
}
