//! A secondary's host access list applied to NBD clients.

use plexus_nbd::Peer;
use std::net::{IpAddr, ToSocketAddrs};

/// Whether `peer` may use a volume whose access list is `allow` (empty: every host).
/// `local` is this machine's host identity: a client on the Unix socket or on loopback
/// is this host. A TCP client from elsewhere matches an entry that is its address or a
/// name resolving to it. The error names the client and the list, for the refusal.
pub fn host_allowed(allow: &[String], peer: &Peer, local: &str) -> Result<(), String> {
    if allow.is_empty() {
        return Ok(());
    }
    let ip = match peer {
        Peer::Unix => None,
        Peer::Tcp(a) => Some(a.ip()),
    };
    let is_local = ip.is_none_or(|ip| ip.is_loopback() || ip.to_canonical().is_loopback());
    if is_local && allow.iter().any(|h| h == local) {
        return Ok(());
    }
    if let Some(ip) = ip {
        let ip = ip.to_canonical();
        for entry in allow {
            if entry.parse::<IpAddr>().is_ok_and(|a| a.to_canonical() == ip) {
                return Ok(());
            }
            // A name: what it resolves to now (an unresolvable name matches nothing).
            if entry.parse::<IpAddr>().is_err() {
                if let Ok(addrs) = (entry.as_str(), 0).to_socket_addrs() {
                    if addrs.into_iter().any(|a| a.ip().to_canonical() == ip) {
                        return Ok(());
                    }
                }
            }
        }
    }
    let who = match (peer, is_local) {
        (Peer::Unix, _) => format!("host {local} (local socket)"),
        (Peer::Tcp(a), true) => format!("host {local} ({})", a.ip()),
        (Peer::Tcp(a), false) => format!("client {}", a.ip()),
    };
    Err(format!("{who} is not on the access list ({})", allow.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn tcp(s: &str) -> Peer {
        Peer::Tcp(s.parse::<SocketAddr>().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))))
    }

    #[test]
    fn empty_list_admits_everyone() {
        assert!(host_allowed(&[], &tcp("10.1.2.3:5000"), "me").is_ok());
    }

    #[test]
    fn local_clients_are_this_host() {
        let allow = vec!["backup1".to_owned()];
        assert!(host_allowed(&allow, &Peer::Unix, "backup1").is_ok());
        assert!(host_allowed(&allow, &tcp("127.0.0.1:40000"), "backup1").is_ok());
        assert!(host_allowed(&allow, &tcp("[::1]:40000"), "backup1").is_ok());
        let refused = host_allowed(&allow, &Peer::Unix, "app1");
        assert!(refused.as_ref().is_err_and(|m| m.contains("app1") && m.contains("backup1")), "{refused:?}");
    }

    #[test]
    fn remote_clients_match_by_address() {
        let allow = vec!["192.0.2.7".to_owned()];
        assert!(host_allowed(&allow, &tcp("192.0.2.7:1234"), "me").is_ok());
        assert!(host_allowed(&allow, &tcp("[::ffff:192.0.2.7]:1234"), "me").is_ok());
        assert!(host_allowed(&allow, &tcp("192.0.2.8:1234"), "me").is_err());
        // A loopback client is this host, not whatever address the list names.
        assert!(host_allowed(&allow, &tcp("127.0.0.1:1"), "me").is_err());
    }
}
