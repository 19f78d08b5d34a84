//! Where the hub may send a request (server-side request forgery defence): the URLs services
//! register (webhook, redirect URIs) and providers' endpoints must be https on a public
//! address, both when they are registered and every time the hub connects.
//!
//! Refused everywhere: unspecified, multicast, broadcast and reserved addresses, link-local
//! ones and the cloud metadata services (169.254.169.254, fd00:ec2::254, …). Refused unless
//! [`HubConfig::allow_local_network`](crate::HubConfig::allow_local_network) (the demo town
//! and tests, whose providers listen on 127.0.0.1): loopback, private (RFC 1918, ULA),
//! shared (CGNAT, RFC 6598) addresses, and plain http.
//!
//! A name is checked after resolution, and again at each connection: the hub's HTTP client
//! resolves through [`GuardedResolver`], which drops every refused address from the answer,
//! so a name that resolved to a public address at registration and to 127.0.0.1 later
//! (DNS rebinding) is never connected to. Literal addresses do not go through a resolver;
//! [`check_destination`] checks them before each request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::{Ipv4Net, Ipv6Net};
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::HubError;

/// Why an address is not one the hub sends requests to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    CloudMetadata,
    Unspecified,
    Multicast,
    Reserved,
    LinkLocal,
    Loopback,
    Private,
    SharedAddressSpace,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CloudMetadata => "a cloud metadata address",
            Self::Unspecified => "an unspecified address",
            Self::Multicast => "a multicast address",
            Self::Reserved => "a reserved address",
            Self::LinkLocal => "a link-local address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private-network address",
            Self::SharedAddressSpace => "a shared (carrier-grade NAT) address",
        }
    }

    /// Whether the demo town and tests may use such an address anyway.
    fn is_local(self) -> bool {
        matches!(
            self,
            Self::Loopback | Self::Private | Self::SharedAddressSpace
        )
    }
}

/// Cloud providers' instance metadata and host services: refused in every mode.
const METADATA_V4: &[Ipv4Addr] = &[
    Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, OpenStack, Oracle, …
    Ipv4Addr::new(169, 254, 170, 2),   // AWS ECS task metadata
    Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
    Ipv4Addr::new(168, 63, 129, 16),   // Azure host (WireServer)
];
const METADATA_V6: &[Ipv6Addr] = &[
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254), // AWS (IPv6)
];

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(first: u16, second: u16, len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(Ipv6Addr::new(first, second, 0, 0, 0, 0, 0, 0), len)
}

/// IPv4 ranges by why they are refused (IANA special-purpose registry, RFC 6890); multicast
/// and 240.0.0.0/4 (reserved, broadcast) are checked before.
const V4_RANGES: [(Ipv4Net, Refusal); 12] = [
    (v4(0, 0, 0, 0, 8), Refusal::Unspecified),
    (v4(10, 0, 0, 0, 8), Refusal::Private),
    (v4(100, 64, 0, 0, 10), Refusal::SharedAddressSpace),
    (v4(127, 0, 0, 0, 8), Refusal::Loopback),
    (v4(169, 254, 0, 0, 16), Refusal::LinkLocal),
    (v4(172, 16, 0, 0, 12), Refusal::Private),
    (v4(192, 0, 0, 0, 24), Refusal::Reserved),
    (v4(192, 0, 2, 0, 24), Refusal::Reserved),
    (v4(192, 168, 0, 0, 16), Refusal::Private),
    (v4(198, 18, 0, 0, 15), Refusal::Reserved),
    (v4(198, 51, 100, 0, 24), Refusal::Reserved),
    (v4(203, 0, 113, 0, 24), Refusal::Reserved),
];

/// IPv6 ranges by why they are refused; unspecified, loopback, multicast and addresses
/// embedding an IPv4 one are judged before.
const V6_RANGES: [(Ipv6Net, Refusal); 6] = [
    (v6(0, 0, 96), Refusal::Reserved), // IPv4-compatible (deprecated)
    (v6(0x2001, 0, 32), Refusal::Reserved), // Teredo tunnels reach any IPv4 address
    (v6(0x2001, 0xdb8, 32), Refusal::Reserved), // documentation
    (v6(0xfc00, 0, 7), Refusal::Private), // unique local (ULA)
    (v6(0xfe80, 0, 10), Refusal::LinkLocal),
    (v6(0xfec0, 0, 10), Refusal::Private), // site-local (deprecated)
];

/// Why the hub must not connect to `ip`, if it must not (see the module docs);
/// `allow_local` lets loopback, private and shared addresses through.
pub fn refusal(ip: IpAddr, allow_local: bool) -> Option<Refusal> {
    let why = classify(ip)?;
    (!(allow_local && why.is_local())).then_some(why)
}

fn classify(ip: IpAddr) -> Option<Refusal> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Refusal> {
    if METADATA_V4.contains(&ip) {
        return Some(Refusal::CloudMetadata);
    }
    if ip.is_multicast() {
        return Some(Refusal::Multicast);
    }
    if ip >= Ipv4Addr::new(240, 0, 0, 0) {
        return Some(Refusal::Reserved);
    }
    V4_RANGES
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, why)| *why)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Refusal> {
    if METADATA_V6.contains(&ip) {
        return Some(Refusal::CloudMetadata);
    }
    if ip.is_unspecified() {
        return Some(Refusal::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Refusal::Loopback);
    }
    if ip.is_multicast() {
        return Some(Refusal::Multicast);
    }
    // ::ffff:a.b.c.d, 64:ff9b::a.b.c.d (NAT64) and 2002:aabb:ccdd:: (6to4) reach an IPv4
    // address: they are what that address is.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    let embedded = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return classify_v4(embedded(s[1], s[2]));
    }
    V6_RANGES
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, why)| *why)
}

/// Checks a URL before the hub sends a request to it: the scheme, and the address when the
/// host is a literal one (names are checked by [`GuardedResolver`] as they are resolved).
pub fn check_destination(url: &Url, allow_local: bool) -> Result<(), String> {
    check_scheme(url, allow_local)?;
    match url.host() {
        Some(url::Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), allow_local),
        Some(url::Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), allow_local),
        Some(url::Host::Domain(_)) => Ok(()),
        None => Err("the URL names no host".to_owned()),
    }
}

fn check_scheme(url: &Url, allow_local: bool) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_local => Ok(()),
        "http" => Err("it must use https, not http".to_owned()),
        other => Err(format!("it must use https, not `{other}`")),
    }
}

fn check_ip(ip: IpAddr, allow_local: bool) -> Result<(), String> {
    match refusal(ip, allow_local) {
        Some(why) => Err(format!("`{ip}` is {}", why.as_str())),
        None => Ok(()),
    }
}

/// Checks a URL given at registration (`field` names it in the problem): absolute, https
/// (http too with `allow_local`), no credentials or fragment, and a host whose every
/// address the hub may connect to. A name that does not resolve is refused, unless
/// `allow_local` (the demo's and tests' made-up names resolve nowhere).
pub async fn check_registered_url(
    field: &str,
    raw: &str,
    allow_local: bool,
) -> Result<Url, HubError> {
    let refuse = |detail: String| HubError::InvalidField {
        field: field.to_owned(),
        detail: format!("`{field}` {detail}"),
    };
    let url = Url::parse(raw).map_err(|_| refuse(format!("`{raw}` is not an absolute URL")))?;
    check_scheme(&url, allow_local).map_err(|e| refuse(format!("`{raw}`: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(format!("`{raw}` must not carry credentials")));
    }
    if url.fragment().is_some() {
        return Err(refuse(format!("`{raw}` must not have a fragment")));
    }
    check_destination(&url, allow_local).map_err(|e| refuse(format!("`{raw}`: {e}")))?;
    if let Some(url::Host::Domain(name)) = url.host() {
        let port = url.port_or_known_default().unwrap_or(443);
        match tokio::net::lookup_host((name, port)).await {
            Ok(addrs) => {
                for addr in addrs {
                    check_ip(addr.ip(), allow_local)
                        .map_err(|e| refuse(format!("`{raw}`: `{name}` resolves to {e}")))?;
                }
            }
            Err(_) if allow_local => {}
            Err(_) => {
                return Err(refuse(format!("`{raw}`: `{name}` does not resolve")));
            }
        }
    }
    Ok(url)
}

/// The hub's DNS resolver: the system's, less every address the hub must not connect to
/// (see [`refusal`]). A name left with no address fails to resolve, so the request fails
/// like one to an unreachable host, and nothing is sent.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_local: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(resolve_allowed(name.as_str().to_owned(), self.allow_local))
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn resolve_allowed(host: String, allow_local: bool) -> Result<Addrs, BoxError> {
    let allowed: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
        .await?
        .filter(|addr| refusal(addr.ip(), allow_local).is_none())
        .collect();
    if allowed.is_empty() {
        tracing::warn!(host = %host, "refused to connect: the name resolves only to addresses the hub must not reach");
        return Err(format!("`{host}` resolves to no address the hub may reach").into());
    }
    Ok(Box::new(allowed.into_iter()))
}

/// Why a body from outside was not read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is (or says it is) longer than the limit; the rest was not read.
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the body broke off: {0}")]
    Transport(reqwest::Error),
}

/// Reads a response's body, at most `limit` bytes. A longer one is refused as soon as its
/// declared length or the bytes received pass the limit, and the connection is dropped: what
/// another party sends never costs the hub more memory than the limit.
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: u64,
) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_and_metadata_addresses_are_refused_and_public_ones_are_not() {
        for (addr, why) in [
            ("127.0.0.1", Refusal::Loopback),
            ("::1", Refusal::Loopback),
            ("10.1.2.3", Refusal::Private),
            ("172.16.0.1", Refusal::Private),
            ("192.168.1.1", Refusal::Private),
            ("fd12:3456::1", Refusal::Private),
            ("100.64.0.1", Refusal::SharedAddressSpace),
            ("169.254.169.254", Refusal::CloudMetadata),
            ("fd00:ec2::254", Refusal::CloudMetadata),
            ("100.100.100.200", Refusal::CloudMetadata),
            ("169.254.1.1", Refusal::LinkLocal),
            ("fe80::1", Refusal::LinkLocal),
            ("0.0.0.0", Refusal::Unspecified),
            ("::", Refusal::Unspecified),
            ("224.0.0.1", Refusal::Multicast),
            ("ff02::1", Refusal::Multicast),
            ("255.255.255.255", Refusal::Reserved),
            ("::ffff:127.0.0.1", Refusal::Loopback),
            ("::ffff:169.254.169.254", Refusal::CloudMetadata),
            ("64:ff9b::a9fe:a9fe", Refusal::CloudMetadata),
            ("2002:7f00:1::", Refusal::Loopback),
        ] {
            assert_eq!(refusal(ip(addr), false), Some(why), "{addr}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "2a00:1450::1",
        ] {
            assert_eq!(refusal(ip(public), false), None, "{public}");
        }
    }

    #[test]
    fn local_mode_lets_loopback_and_private_addresses_through_but_never_metadata() {
        for local in ["127.0.0.1", "::1", "10.0.0.1", "192.168.0.2", "fd00::1"] {
            assert_eq!(refusal(ip(local), true), None, "{local}");
        }
        for never in [
            "169.254.169.254",
            "fd00:ec2::254",
            "0.0.0.0",
            "224.0.0.1",
            "fe80::1",
        ] {
            assert!(refusal(ip(never), true).is_some(), "{never}");
        }
    }

    #[test]
    fn a_literal_address_or_a_scheme_other_than_https_is_refused_before_sending() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(check_destination(&url("https://93.184.216.34/x"), false).is_ok());
        assert!(check_destination(&url("https://provider.example/x"), false).is_ok());
        assert!(check_destination(&url("http://93.184.216.34/x"), false).is_err());
        assert!(check_destination(&url("https://127.0.0.1:9999/x"), false).is_err());
        assert!(check_destination(&url("https://[::1]/x"), false).is_err());
        assert!(check_destination(&url("http://127.0.0.1:9999/x"), true).is_ok());
        assert!(check_destination(&url("http://169.254.169.254/x"), true).is_err());
        assert!(check_destination(&url("file:///etc/passwd"), true).is_err());
    }
}
