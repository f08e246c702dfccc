//! Network addresses as genesis and the node config write them.
//!
//! A p2p address is the subset of libp2p multiaddrs a Cradle node can dial or listen on:
//! `/ip4/A.B.C.D/tcp/PORT`, `/ip6/ADDR/tcp/PORT` or `/dns|dns4|dns6/HOST/tcp/PORT`, optionally
//! followed by `/udp/PORT/quic-v1` instead of `/tcp/PORT`. Peer ids (`/p2p/...`) are not written:
//! a member's libp2p identity is its genesis key. Checking the address here, without libp2p,
//! keeps this crate free of networking dependencies while rejecting anything libp2p would.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// Longest p2p address accepted, in bytes.
pub const P2P_ADDR_LEN_MAX: usize = 256;

/// The host part of a p2p address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum P2pHost {
    Ip4(Ipv4Addr),
    Ip6(Ipv6Addr),
    /// A DNS name, as written after `/dns`, `/dns4` or `/dns6`.
    Dns(String),
}

/// The transport part of a p2p address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum P2pTransport {
    Tcp,
    QuicV1,
}

/// A parsed p2p address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct P2pAddr {
    pub host: P2pHost,
    pub transport: P2pTransport,
    pub port: u16,
}

impl P2pAddr {
    /// Parses a multiaddr string; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() > P2P_ADDR_LEN_MAX {
            return Err(format!("longer than {P2P_ADDR_LEN_MAX} bytes"));
        }
        let Some(rest) = s.strip_prefix('/') else {
            return Err("must start with '/'".into());
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let (proto, host) = match parts.as_slice() {
            [proto, host, ..] => (*proto, *host),
            _ => return Err("want /ip4|ip6|dns|dns4|dns6/HOST/tcp/PORT".into()),
        };
        let host = match proto {
            "ip4" => P2pHost::Ip4(
                host.parse()
                    .map_err(|_| format!("bad ip4 address {host:?}"))?,
            ),
            "ip6" => P2pHost::Ip6(
                host.parse()
                    .map_err(|_| format!("bad ip6 address {host:?}"))?,
            ),
            "dns" | "dns4" | "dns6" => {
                check_dns_name(host)?;
                P2pHost::Dns(host.to_string())
            }
            other => return Err(format!("unsupported protocol {other:?}")),
        };
        let (transport, port) = match &parts[2..] {
            ["tcp", port] => (P2pTransport::Tcp, *port),
            ["udp", port, "quic-v1"] => (P2pTransport::QuicV1, *port),
            _ => return Err("want .../tcp/PORT or .../udp/PORT/quic-v1 after the host".into()),
        };
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("bad port {port:?}"))?;
        Ok(Self {
            host,
            transport,
            port,
        })
    }
}

fn check_dns_name(host: &str) -> Result<(), String> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("bad dns name {host:?}"))
    }
}

/// Parses an API address (`IP:PORT`); the error says what is wrong with it.
pub fn parse_api_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .map_err(|_| "want IP:PORT, like 127.0.0.1:8600".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_dialable_multiaddrs() {
        let a = P2pAddr::parse("/ip4/127.0.0.1/tcp/26600").unwrap();
        assert_eq!(a.host, P2pHost::Ip4(Ipv4Addr::LOCALHOST));
        assert_eq!((a.transport, a.port), (P2pTransport::Tcp, 26600));
        assert!(P2pAddr::parse("/ip6/::1/tcp/1").is_ok());
        assert!(P2pAddr::parse("/dns4/node-1.county.example/tcp/26600").is_ok());
        let q = P2pAddr::parse("/ip4/10.0.0.1/udp/9000/quic-v1").unwrap();
        assert_eq!(q.transport, P2pTransport::QuicV1);
    }

    #[test]
    fn rejects_malformed_multiaddrs() {
        for bad in [
            "",
            "127.0.0.1:26600",
            "/ip4/127.0.0.1",
            "/ip4/127.0.0.1/tcp",
            "/ip4/127.0.0.1/tcp/70000",
            "/ip4/127.0.0.1/tcp/x",
            "/ip4/300.0.0.1/tcp/1",
            "/ip6/127.0.0.1/tcp/1",
            "/dns/-bad/tcp/1",
            "/unix/tmp/sock",
            "/ip4/127.0.0.1/tcp/1/p2p/12D3KooW",
            "/ip4/127.0.0.1/udp/1",
        ] {
            assert!(P2pAddr::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn api_addr_is_ip_and_port() {
        assert_eq!(parse_api_addr("127.0.0.1:8600").unwrap().port(), 8600);
        assert!(parse_api_addr("[::1]:8600").is_ok());
        assert!(parse_api_addr("localhost:8600").is_err());
        assert!(parse_api_addr("127.0.0.1").is_err());
    }
}
