//! The client's address, the key of per-address limits: the TCP peer, or what a trusted
//! reverse proxy says in its header.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::config::ProxySettings;

/// The address limits are counted against. A header from anyone but a listed proxy is
/// ignored; from a proxy, the last address in it is the one that proxy saw connect (earlier
/// ones were written by the client and prove nothing).
pub fn address(peer: SocketAddr, headers: &HeaderMap, proxy: &ProxySettings) -> IpAddr {
    let peer_ip = canonical(peer.ip());
    let Some(name) = proxy.client_address_header.as_deref() else {
        return peer_ip;
    };
    if !proxy.trusted.iter().any(|t| canonical(*t) == peer_ip) {
        return peer_ip;
    }
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .and_then(|a| a.trim().parse::<IpAddr>().ok())
        .map_or(peer_ip, canonical)
}

/// IPv4 clients of a dual-stack listener arrive as `::ffff:a.b.c.d`; count them as `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::try_from(*k).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    // The forwarded address counts only from a listed proxy, and only its last entry.
    fn trusted_proxy_header() {
        let proxy = ProxySettings {
            client_address_header: Some("X-Forwarded-For".into()),
            trusted: vec!["10.0.0.1".parse().unwrap()],
        };
        let fwd = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7")]);
        let from_proxy: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let from_anyone: SocketAddr = "198.51.100.2:5000".parse().unwrap();
        assert_eq!(
            address(from_proxy, &fwd, &proxy),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            address(from_anyone, &fwd, &proxy),
            "198.51.100.2".parse::<IpAddr>().unwrap()
        );
        let garbage = headers(&[("x-forwarded-for", "not an address")]);
        assert_eq!(
            address(from_proxy, &garbage, &proxy),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        let none = ProxySettings::default();
        assert_eq!(
            address(from_proxy, &fwd, &none),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        let mapped: SocketAddr = "[::ffff:192.0.2.9]:1".parse().unwrap();
        assert_eq!(
            address(mapped, &HeaderMap::new(), &none),
            "192.0.2.9".parse::<IpAddr>().unwrap()
        );
    }
}
