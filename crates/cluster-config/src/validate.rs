//! The checks kind makes before creating a cluster (its
//! `pkg/internal/apis/config/validate.go`), on the config as written: kind
//! validates after filling in its defaults, so an unset value here counts as
//! kind's default (`ipFamily` ipv4, `role` control-plane, no nodes = one
//! control-plane node).
//!
//! Enumerations need no check: they cannot hold a bad value once decoded.

use std::net::{IpAddr, Ipv4Addr};

use crate::error::{Error, Violation, Violations};
use crate::model::{Cluster, IpFamily, Node, PortMapping, Protocol, Role};

impl Cluster {
    /// Every problem kind would refuse the config for, with its path and value.
    pub fn validate(&self) -> Result<(), Error> {
        let mut found = Vec::new();
        let mut report = |path: String, message: String| found.push(Violation { path, message });

        if let Some(name) = self.name.as_deref().filter(|n| !n.is_empty())
            && !is_valid_name(name)
        {
            report(
                "name".to_owned(),
                format!(
                    "{name:?} is not a valid cluster name; use only lowercase letters, digits, '.' and '-' (^[a-z0-9.-]+$)"
                ),
            );
        }

        if let Some(net) = &self.networking {
            if let Some(port) = net.api_server_port.filter(|p| *p != 0)
                && let Err(message) = check_port(port, PICK_HOST_PORT)
            {
                report("networking.apiServerPort".to_owned(), message);
            }
            let family = net.ip_family.unwrap_or(IpFamily::Ipv4);
            for (field, value) in [
                ("podSubnet", &net.pod_subnet),
                ("serviceSubnet", &net.service_subnet),
            ] {
                if let Some(value) = value.as_deref().filter(|v| !v.is_empty())
                    && let Err(message) = check_subnets(value, family, net.ip_family.is_none())
                {
                    report(format!("networking.{field}"), message);
                }
            }
        }

        for (i, node) in self.nodes.iter().enumerate() {
            check_node(node, &format!("nodes[{i}]"), &mut report);
        }
        if !self.nodes.is_empty()
            && !self
                .nodes
                .iter()
                .any(|n| n.effective_role() == Role::ControlPlane)
        {
            let workers = match self.nodes.len() {
                1 => "the only node is a worker".to_owned(),
                n => format!("all {n} nodes are workers"),
            };
            report(
                "nodes".to_owned(),
                format!("{workers}; kind needs at least one node with `role: control-plane`"),
            );
        }

        if found.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(Violations(found)))
        }
    }
}

const PICK_HOST_PORT: &str = "0 or unset lets kind pick a free port, -1 the container engine";

/// `^[a-z0-9.-]+$`, kind's rule for cluster names (they become container names).
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

fn check_port(port: i32, hint: &str) -> Result<(), String> {
    if (-1..=65535).contains(&port) {
        Ok(())
    } else {
        Err(format!("{port} is not a valid port; use 1-65535 ({hint})"))
    }
}

fn check_node(node: &Node, at: &str, report: &mut impl FnMut(String, String)) {
    let mut bound: Vec<Binding<'_>> = Vec::new();
    for (j, mapping) in node.extra_port_mappings.iter().enumerate() {
        let here = format!("{at}.extraPortMappings[{j}]");
        if let Some(port) = mapping.host_port
            && let Err(message) = check_port(port, PICK_HOST_PORT)
        {
            report(format!("{here}.hostPort"), message);
        }
        if let Some(port) = mapping.container_port
            && let Err(message) = check_port(port, "the port a service listens on in the node")
        {
            report(format!("{here}.containerPort"), message);
        }
        // kind's `validatePortMappings` skips a mapping whose host port is
        // picked for it (0 or unset by kind, -1 by the container engine):
        // such ports cannot collide, and its listen address goes unchecked.
        let Some(port) = mapping.host_port.filter(|p| *p != 0 && *p != -1) else {
            continue;
        };
        let address = match listen_address(mapping) {
            Ok(address) => address,
            Err(message) => {
                report(format!("{here}.listenAddress"), message);
                continue;
            }
        };
        let binding = Binding {
            port,
            protocol: mapping.protocol,
            address,
            written: mapping.listen_address.as_deref().filter(|a| !a.is_empty()),
            index: j,
        };
        if let Some(other) = bound.iter().find(|b| b.overlaps(&binding)) {
            report(
                here,
                format!(
                    "hostPort {} overlaps extraPortMappings[{}] ({}) of the same node; use another hostPort or listenAddress",
                    binding.describe(),
                    other.index,
                    other.describe(),
                ),
            );
        } else {
            bound.push(binding);
        }
    }
}

/// A fixed host port that a port mapping binds.
struct Binding<'a> {
    port: i32,
    /// As written: kind's check tells an unset protocol from TCP, which is
    /// its default only when it creates the node. So `80` and `80/TCP` on
    /// one address pass, and the engine is asked to bind it twice.
    protocol: Option<Protocol>,
    /// As [`listen_address`] reads it.
    address: IpAddr,
    /// The `listenAddress` as written, if any.
    written: Option<&'a str>,
    /// Which of the node's `extraPortMappings`.
    index: usize,
}

impl Binding<'_> {
    /// The same port and protocol on the same address, or either on all addresses.
    fn overlaps(&self, other: &Binding<'_>) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.address == other.address
                || self.address.is_unspecified()
                || other.address.is_unspecified())
    }

    /// `80/TCP on 127.0.0.1` (`80 on ...` without a protocol), with the
    /// address as written and what it means when the two differ
    /// (`::ffff:127.0.0.1 (the same as 127.0.0.1)`).
    fn describe(&self) -> String {
        let port = match self.protocol {
            Some(protocol) => format!("{}/{protocol}", self.port),
            None => self.port.to_string(),
        };
        let address = self.address;
        match self.written {
            Some(text) if text.parse() != Ok(address) => {
                format!("{port} on {text} (the same as {address})")
            }
            _ => format!("{port} on {address}"),
        }
    }
}

/// The listen address as kind's overlap check compares it (Go's `net.IP`):
/// unset, `0.0.0.0`, `::` and `::ffff:0.0.0.0` are all addresses, and an
/// IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is that IPv4 address.
fn listen_address(mapping: &PortMapping) -> Result<IpAddr, String> {
    let wildcard = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    match mapping.listen_address.as_deref() {
        None | Some("") => Ok(wildcard),
        Some(text) => match text.parse::<IpAddr>() {
            Ok(ip) => Ok(match ip.to_canonical() {
                ip if ip.is_unspecified() => wildcard,
                ip => ip,
            }),
            Err(_) => Err(format!(
                "{text:?} is not an IP address; use e.g. 127.0.0.1, 0.0.0.0 or ::"
            )),
        },
    }
}

/// One CIDR, or for `dual` one per family, as kind's `validateSubnets` checks.
fn check_subnets(value: &str, family: IpFamily, family_defaulted: bool) -> Result<(), String> {
    let mut v6 = Vec::new();
    for cidr in value.split(',') {
        v6.push(parse_cidr(cidr).map_err(|why| {
            format!("{cidr:?} is not a CIDR ({why}); write e.g. 10.244.0.0/16 or fd00:10:244::/56, two separated by a comma for ipFamily dual")
        })?);
    }
    let family_name = if family_defaulted {
        "ipv4 (the default)".to_owned()
    } else {
        family.to_string()
    };
    match (family, v6.as_slice()) {
        (IpFamily::Dual, [_, _, _, ..]) => Err(format!(
            "{value:?} has {} CIDRs; ipFamily dual takes one, or two of different families",
            v6.len()
        )),
        (IpFamily::Dual, [a, b]) if a == b => Err(format!(
            "{value:?} has two {} CIDRs{}; ipFamily dual needs one IPv4 and one IPv6 CIDR",
            if *a { "IPv6" } else { "IPv4" },
            if *a { "" } else { mapped_note(value) }
        )),
        (IpFamily::Ipv4 | IpFamily::Ipv6, [_, _, ..]) => Err(format!(
            "{value:?} has {} CIDRs, but ipFamily is {family_name}; single-stack takes one CIDR (set networking.ipFamily: dual for two)",
            v6.len()
        )),
        (IpFamily::Ipv4, [true]) => Err(format!(
            "{value:?} is an IPv6 CIDR, but ipFamily is {family_name}; use an IPv4 CIDR or set networking.ipFamily"
        )),
        (IpFamily::Ipv6, [false]) => Err(format!(
            "{value:?} is an IPv4 CIDR{}, but ipFamily is ipv6; use an IPv6 CIDR",
            mapped_note(value)
        )),
        _ => Ok(()),
    }
}

/// Why an IPv4 CIDR can be written with colons.
fn mapped_note(value: &str) -> &'static str {
    if value.contains(':') {
        " (an IPv4-mapped address, ::ffff:a.b.c.d, with a prefix of 96 or more is IPv4)"
    } else {
        ""
    }
}

/// Parses `ADDRESS/PREFIX` as Go's `net.ParseCIDR` does; true for IPv6.
///
/// The family is the one kind sees (`IP.To4() == nil` on the masked
/// address): an IPv4-mapped IPv6 address (`::ffff:10.0.0.0/104`) with a
/// prefix of 96 or more keeps its `::ffff:` part and so counts as IPv4.
fn parse_cidr(cidr: &str) -> Result<bool, &'static str> {
    let (address, prefix) = cidr.split_once('/').ok_or("no /prefix length")?;
    let address: IpAddr = address
        .parse()
        .map_err(|_| "not an IP address before the /")?;
    let bits = if address.is_ipv6() { 128 } else { 32 };
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the prefix length after the / is not a number");
    }
    match prefix.parse::<u32>() {
        Ok(n) if n <= bits => Ok(match address {
            IpAddr::V4(_) => false,
            IpAddr::V6(v6) => n < 96 || v6.to_ipv4_mapped().is_none(),
        }),
        _ if address.is_ipv6() => Err("the prefix length of an IPv6 CIDR is at most 128"),
        _ => Err("the prefix length of an IPv4 CIDR is at most 32"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_like_go() {
        assert_eq!(parse_cidr("10.244.0.0/16"), Ok(false));
        assert_eq!(parse_cidr("fd00:10:244::/56"), Ok(true));
        assert_eq!(parse_cidr("0.0.0.0/0"), Ok(false));
        // Go's To4 on the masked address: IPv4 while the ::ffff: part survives the mask.
        assert_eq!(parse_cidr("::ffff:10.0.0.0/104"), Ok(false));
        assert_eq!(parse_cidr("::ffff:10.0.0.0/96"), Ok(false));
        assert_eq!(parse_cidr("::ffff:10.0.0.0/95"), Ok(true));
        assert_eq!(parse_cidr("::10.0.0.0/104"), Ok(true));
        // Go's prefix length may have leading zeros.
        assert_eq!(parse_cidr("10.244.0.0/016"), Ok(false));
        for bad in [
            "10.244.0.0",
            "10.244.0.0/33",
            "10.244.0/16",
            "10.244.0.0/+8",
            "10.244.0.0/",
            " 10.244.0.0/16",
            "fd00::/129",
            "",
        ] {
            assert!(parse_cidr(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn subnets_follow_the_family() {
        assert!(check_subnets("10.244.0.0/16", IpFamily::Ipv4, true).is_ok());
        assert!(check_subnets("10.244.0.0/16,fd00:10:244::/56", IpFamily::Dual, false).is_ok());
        assert!(check_subnets("10.244.0.0/16", IpFamily::Dual, false).is_ok());
        assert!(check_subnets("fd00::/56", IpFamily::Ipv4, true).is_err());
        assert!(check_subnets("10.0.0.0/8", IpFamily::Ipv6, false).is_err());
        assert!(check_subnets("10.0.0.0/8,10.1.0.0/16", IpFamily::Dual, false).is_err());
        assert!(check_subnets("10.0.0.0/8,fd00::/56", IpFamily::Ipv4, false).is_err());
        assert!(check_subnets("10.0.0.0/8,fd00::/56,fd01::/56", IpFamily::Dual, false).is_err());
    }

    #[test]
    fn listen_addresses_compare_as_in_go() {
        let read = |text: &str| {
            listen_address(&PortMapping {
                listen_address: Some(text.to_owned()),
                ..PortMapping::default()
            })
        };
        let wildcard = Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        for all in ["", "0.0.0.0", "::", "::ffff:0.0.0.0"] {
            assert_eq!(read(all), wildcard, "{all:?}");
        }
        assert_eq!(read("::ffff:127.0.0.1"), read("127.0.0.1"));
        // Only the ::ffff: form is IPv4 to Go, not the old IPv4-compatible one.
        assert_ne!(read("::127.0.0.1"), read("127.0.0.1"));
        assert!(read("localhost").is_err());
        assert!(read("fe80::1%eth0").is_err());
    }

    #[test]
    fn names() {
        assert!(is_valid_name("kind"));
        assert!(is_valid_name("crio-1.34.test"));
        assert!(!is_valid_name("Kind"));
        assert!(!is_valid_name("a_b"));
        assert!(!is_valid_name(""));
    }
}
