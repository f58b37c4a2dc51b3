//! Calls per minute per caller of the development-records API (a keyed token bucket), so one
//! system's runaway job cannot starve the others.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct ApiRateLimit {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl ApiRateLimit {
    pub fn new(per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute.max(1)).expect("at least one");
        let burst = NonZeroU32::new((per_minute.get() / 10).max(1)).expect("at least one");
        Self { limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)) }
    }

    /// `Err(wait)` if `caller` must wait before calling again.
    pub fn check(&self, caller: &str) -> Result<(), Duration> {
        self.limiter
            .check_key(&caller.to_owned())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}
