//! `SCHOOLSIGNAL_TRUSTED_PROXIES`: which peers' `X-Forwarded-For` names the client.

use std::net::IpAddr;

/// The proxies (`SCHOOLSIGNAL_TRUSTED_PROXIES`: IPs or CIDRs) whose
/// `X-Forwarded-For` is believed. Empty by default: the client is the peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses a comma-separated list such as `10.0.0.0/8, 192.168.1.7, fd00::/8`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (ip, bits) = match item.split_once('/') {
                Some((ip, bits)) => (ip, Some(bits)),
                None => (item, None),
            };
            let ip: IpAddr = ip
                .trim()
                .parse()
                .map_err(|_| format!("`{item}` is not an IP address or CIDR"))?;
            let ip = ip.to_canonical();
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(b) => b
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("`{item}` has a bad prefix length"))?,
            };
            nets.push((ip, bits));
        }
        Ok(TrustedProxies(nets))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|(net, bits)| match (net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                same_prefix(u32::from(*net).into(), u32::from(ip).into(), *bits, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                same_prefix(u128::from(*net), u128::from(ip), *bits, 128)
            }
            _ => false,
        })
    }

    /// The client of a request from `peer` with these `X-Forwarded-For` values (in
    /// header order). Only a trusted peer's header counts; in it, the rightmost
    /// address that is not itself a trusted proxy is the client, as entries to its
    /// left are whatever the client chose to send. An entry that is no address ends
    /// the walk at the nearest hop that was believed.
    pub fn client(&self, peer: Option<IpAddr>, forwarded_for: &[&str]) -> Option<IpAddr> {
        let mut client = peer?.to_canonical();
        if !self.contains(client) {
            return Some(client);
        }
        let hops: Vec<&str> = forwarded_for
            .iter()
            .flat_map(|h| h.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.into_iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                break;
            };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        Some(client)
    }
}

fn same_prefix(a: u128, b: u128, bits: u8, width: u8) -> bool {
    if bits == 0 {
        return true;
    }
    let shift = u32::from(width - bits);
    (a >> shift) == (b >> shift)
}

/// An `X-Forwarded-For` entry: an address, IPv6 possibly in brackets, possibly with
/// a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = hop.parse::<std::net::SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop_behind_a_trusted_peer() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7,fd00::/8").unwrap();
        let client = |peer: &str, xff: &[&str]| proxies.client(Some(ip(peer)), xff).unwrap();
        // No proxy trusted: the peer, whatever the header says.
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(Some(ip("10.1.2.3")), &["1.2.3.4"]),
            Some(ip("10.1.2.3"))
        );
        // An untrusted peer's header is ignored.
        assert_eq!(client("203.0.113.9", &["1.2.3.4"]), ip("203.0.113.9"));
        // A trusted peer: the rightmost entry that is not a trusted proxy.
        assert_eq!(client("10.0.0.5", &["198.51.100.7"]), ip("198.51.100.7"));
        assert_eq!(
            client("10.0.0.5", &["6.6.6.6, 198.51.100.7, 10.9.9.9"]),
            ip("198.51.100.7"),
            "a spoofed entry to the left is ignored"
        );
        assert_eq!(
            client("192.168.1.7", &["6.6.6.6", "198.51.100.7"]),
            ip("198.51.100.7"),
            "several headers read in order"
        );
        assert_eq!(client("10.0.0.5", &[]), ip("10.0.0.5"), "no header");
        assert_eq!(client("10.0.0.5", &["10.0.0.1, 10.0.0.2"]), ip("10.0.0.1"));
        assert_eq!(
            client("10.0.0.5", &["198.51.100.7, garbage"]),
            ip("10.0.0.5"),
            "a bad entry stops at the nearest believed hop"
        );
        assert_eq!(
            client("10.0.0.5", &["[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
        assert_eq!(
            client("::ffff:10.0.0.5", &["198.51.100.7"]),
            ip("198.51.100.7")
        );
        assert_eq!(client("fd00::1", &["2001:db8::2"]), ip("2001:db8::2"));
        assert!(!proxies.contains(ip("192.168.1.8")));
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("nonsense").is_err());
        assert_eq!(
            TrustedProxies::parse(" ").unwrap(),
            TrustedProxies::default()
        );
        assert!(TrustedProxies::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("8.8.8.8")));
    }
}
