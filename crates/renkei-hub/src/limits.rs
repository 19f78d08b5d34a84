//! Rate limits: how often one peer address or one client may do what costs the hub a stored
//! row or a secret check, so that nobody grows storage without bound or guesses secrets at
//! speed. The limiter is `governor`'s (GCRA), one keyed limiter per kind of act.
//!
//! - Starting an enrolment or a passkey sign-in (each stores a row until it expires), per peer
//!   address: [`Hub::enrolment_challenge`] and [`Hub::start_passkey_sign_in`] take the
//!   [`PeerAddr`], so no route can start one without being counted.
//! - OAuth client authentication (token, introspection, revocation), per peer address and
//!   per client id, before the secret is checked.
//! - Data requests, per service: this also bounds the `unknown-subject` access records an
//!   approved service can make the hub append (each refused request is one).
//!
//! A refusal is [`HubError::RateLimited`]: 429 with `Retry-After` (problem+json on the API, a
//! plain page on the portal). Limits are per replica, in memory; idle keys are forgotten by
//! the hub's purger (`Limiters::forget_idle`).
//!
//! [`Hub::enrolment_challenge`]: crate::Hub::enrolment_challenge
//! [`Hub::start_passkey_sign_in`]: crate::Hub::start_passkey_sign_in

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use renkei_domain::ServiceId;

use crate::HubError;

/// The unit a [`Rate`] counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    Second,
    Minute,
    Hour,
}

impl RateUnit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Second => "s",
            Self::Minute => "min",
            Self::Hour => "h",
        }
    }
}

/// `count` acts per `unit` on average, and at most `burst` at once after a quiet spell.
/// Written `COUNT/UNIT` or `COUNT/UNIT:BURST` (unit `s`, `min` or `h`), e.g. `30/min:10`;
/// without a burst, the burst is the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub unit: RateUnit,
    pub burst: NonZeroU32,
}

impl Rate {
    /// `count` per `unit`, in bursts of up to `burst`; a zero is taken as one.
    pub const fn new(count: u32, unit: RateUnit, burst: u32) -> Self {
        Self {
            count: nonzero(count),
            unit,
            burst: nonzero(burst),
        }
    }

    fn quota(self) -> Quota {
        let quota = match self.unit {
            RateUnit::Second => Quota::per_second(self.count),
            RateUnit::Minute => Quota::per_minute(self.count),
            RateUnit::Hour => Quota::per_hour(self.count),
        };
        quota.allow_burst(self.burst)
    }
}

const fn nonzero(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => NonZeroU32::MIN,
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.count, self.unit.as_str(), self.burst)
    }
}

/// Why a rate does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a rate: write COUNT/UNIT or COUNT/UNIT:BURST, unit s, min or h, counts above zero (e.g. `30/min:10`)"
)]
pub struct RateParseError(String);

impl FromStr for Rate {
    type Err = RateParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || RateParseError(s.to_owned());
        let (count, rest) = s.trim().split_once('/').ok_or_else(error)?;
        let (unit, burst) = match rest.split_once(':') {
            Some((unit, burst)) => (unit, Some(burst)),
            None => (rest, None),
        };
        let number = |n: &str| n.trim().parse::<NonZeroU32>().map_err(|_| error());
        let count = number(count)?;
        let unit = match unit.trim() {
            "s" => RateUnit::Second,
            "min" => RateUnit::Minute,
            "h" => RateUnit::Hour,
            _ => return Err(error()),
        };
        let burst = burst.map(number).transpose()?.unwrap_or(count);
        Ok(Self { count, unit, burst })
    }
}

/// The hub's rate limits ([`crate::HubConfig::limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Enrolment challenges and passkey sign-ins started, per peer address.
    pub ceremonies_per_address: Rate,
    /// OAuth client authentications (token, introspection, revocation), per peer address.
    pub oauth_per_address: Rate,
    /// OAuth client authentications per client id, wherever they come from.
    pub oauth_per_client: Rate,
    /// Data requests per service (each refused one is an access record too).
    pub data_requests_per_client: Rate,
}

impl RateLimits {
    /// Limits no test, demo or benchmark reaches: a million of everything a second.
    pub const GENEROUS: Self = Self {
        ceremonies_per_address: Rate::new(1_000_000, RateUnit::Second, 1_000_000),
        oauth_per_address: Rate::new(1_000_000, RateUnit::Second, 1_000_000),
        oauth_per_client: Rate::new(1_000_000, RateUnit::Second, 1_000_000),
        data_requests_per_client: Rate::new(1_000_000, RateUnit::Second, 1_000_000),
    };
}

impl Default for RateLimits {
    /// A person signs in or enrols a few times a day; a whole household behind one address
    /// a few times a minute. A service asks for a token now and then and introspects what its
    /// users present; its data requests are its business, up to a town's worth a second.
    fn default() -> Self {
        Self {
            ceremonies_per_address: Rate::new(30, RateUnit::Minute, 30),
            oauth_per_address: Rate::new(20, RateUnit::Second, 100),
            oauth_per_client: Rate::new(20, RateUnit::Second, 100),
            data_requests_per_client: Rate::new(1_000, RateUnit::Second, 2_000),
        }
    }
}

/// The address a request came from, as the server's socket saw it. An IPv6 address counts
/// as its /64 (one subscriber's prefix), an IPv4-mapped one as its IPv4 address.
///
/// The server must be started with `into_make_service_with_connect_info::<SocketAddr>()`;
/// without it the extractor fails (500), rather than count every client as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub IpAddr);

impl PeerAddr {
    /// The address as the limits count it (an IPv6 one as its /64): what a security event
    /// names.
    pub(crate) fn subscriber(self) -> IpAddr {
        self.key()
    }

    fn key(self) -> IpAddr {
        match self.0 {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let mask = Ipv6Addr::from(u128::MAX << 64);
                    IpAddr::V6(Ipv6Addr::from(v6.to_bits() & mask.to_bits()))
                }
            },
            v4 => v4,
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> Self {
        Self(addr.ip())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HubError> {
        // axum's own extractor: the server's `ConnectInfo`, or a test's `MockConnectInfo`.
        ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .map(|ConnectInfo(addr)| Self::from(addr))
            .map_err(|_| {
                HubError::internal(
                    "the peer address is unknown: serve with `into_make_service_with_connect_info`",
                )
            })
    }
}

/// The limiters, one per kind of act, each keyed by who acts.
pub struct Limiters {
    ceremonies: DefaultKeyedRateLimiter<IpAddr>,
    oauth_by_address: DefaultKeyedRateLimiter<IpAddr>,
    oauth_by_client: DefaultKeyedRateLimiter<String>,
    data_requests: DefaultKeyedRateLimiter<ServiceId>,
}

impl Limiters {
    pub fn new(limits: &RateLimits) -> Self {
        Self {
            ceremonies: DefaultKeyedRateLimiter::keyed(limits.ceremonies_per_address.quota()),
            oauth_by_address: DefaultKeyedRateLimiter::keyed(limits.oauth_per_address.quota()),
            oauth_by_client: DefaultKeyedRateLimiter::keyed(limits.oauth_per_client.quota()),
            data_requests: DefaultKeyedRateLimiter::keyed(limits.data_requests_per_client.quota()),
        }
    }

    /// Counts an enrolment or passkey sign-in started from `from`.
    pub(crate) fn ceremony(&self, from: PeerAddr) -> Result<(), HubError> {
        check(&self.ceremonies, &from.key())
    }

    /// Counts a client authentication attempt from `from` (with [`Self::oauth_by_client`],
    /// which counts the id claimed before its secret is checked: guessing one client's secret
    /// from many addresses is counted too).
    pub(crate) fn oauth_by_address(&self, from: PeerAddr) -> Result<(), HubError> {
        check(&self.oauth_by_address, &from.key())
    }

    /// Counts a client authentication attempt as `client`.
    pub(crate) fn oauth_by_client(&self, client: &str) -> Result<(), HubError> {
        check(&self.oauth_by_client, &client.to_owned())
    }

    /// Counts a data request of `service`.
    pub(crate) fn data_request(&self, service: &ServiceId) -> Result<(), HubError> {
        check(&self.data_requests, service)
    }

    /// Forgets the keys whose limit is back to full, so memory follows recent callers only.
    pub(crate) fn forget_idle(&self) {
        self.ceremonies.retain_recent();
        self.oauth_by_address.retain_recent();
        self.oauth_by_client.retain_recent();
        self.data_requests.retain_recent();
        self.ceremonies.shrink_to_fit();
        self.oauth_by_address.shrink_to_fit();
        self.oauth_by_client.shrink_to_fit();
        self.data_requests.shrink_to_fit();
    }
}

fn check<K: Clone + Eq + std::hash::Hash>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Result<(), HubError> {
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        HubError::RateLimited {
            retry_after: retry_after(wait),
        }
    })
}

/// Whole seconds to wait, rounded up, at least one (what `Retry-After` can say).
fn retry_after(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_count_per_unit_with_an_optional_burst() {
        assert_eq!("30/min:10".parse(), Ok(Rate::new(30, RateUnit::Minute, 10)));
        assert_eq!("5/s".parse(), Ok(Rate::new(5, RateUnit::Second, 5)));
        assert_eq!("100/h".parse(), Ok(Rate::new(100, RateUnit::Hour, 100)));
        for bad in ["", "30", "0/s", "30/day", "30/min:0", "x/s", "30/min:"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
        let rate = Rate::new(30, RateUnit::Minute, 10);
        assert_eq!(rate.to_string().parse(), Ok(rate));
    }

    #[test]
    fn an_ipv6_subscriber_counts_as_its_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(PeerAddr(a).key(), PeerAddr(b).key());
        assert_ne!(PeerAddr(a).key(), PeerAddr(c).key());
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(
            PeerAddr(mapped).key(),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_burst_is_allowed_and_the_next_act_waits_at_least_a_second() {
        let limiters = Limiters::new(&RateLimits {
            ceremonies_per_address: Rate::new(1, RateUnit::Minute, 2),
            ..RateLimits::GENEROUS
        });
        let from = PeerAddr("192.0.2.1".parse().unwrap());
        let other = PeerAddr("192.0.2.2".parse().unwrap());
        assert!(limiters.ceremony(from).is_ok());
        assert!(limiters.ceremony(from).is_ok());
        match limiters.ceremony(from) {
            Err(HubError::RateLimited { retry_after }) => assert!((1..=60).contains(&retry_after)),
            other => panic!("the third is refused: {other:?}"),
        }
        assert!(limiters.ceremony(other).is_ok());
    }
}
