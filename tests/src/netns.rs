//! A private network for a consortium's nodes: each node in a network namespace of its own,
//! joined by veth links to one bridge in a hub namespace, where the test's own clients live.
//!
//! Nothing of it touches the machine's own network: the bridge, the addresses and every
//! packet stay inside namespaces this process made, and [`Drop`] deletes them. A link between
//! two members is cut with a blackhole route on each side (the packets of established
//! connections go nowhere, new ones cannot start) and healed by deleting the routes.
//!
//! Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and `ip` from iproute2.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{Context, bail};

/// The namespaces, links and addresses of one test's network.
pub struct Netns {
    tag: String,
    subnet: [u8; 3],
    members: usize,
    /// Links cut now, each as (lower index, higher index).
    cut: BTreeSet<(usize, usize)>,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Netns {
    /// Makes the hub (bridge at `.254`) and one namespace per member (member i at `.i+1`), all
    /// in a /24 of 10.213.0.0/16 picked from the process id.
    pub fn create(members: usize) -> anyhow::Result<Self> {
        if members == 0 || members > 200 {
            bail!("{members} members do not fit one /24");
        }
        let pid = std::process::id();
        let tag = format!("cr{}", pid % 100_000);
        let net = Self {
            subnet: [10, 213, (pid % 250) as u8],
            tag,
            members,
            cut: BTreeSet::new(),
        };
        net.build()
            .with_context(|| "making the test network (run as root, with iproute2)")?;
        Ok(net)
    }

    fn build(&self) -> anyhow::Result<()> {
        let hub = self.hub();
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        let hub_addr = format!("{}/24", self.hub_addr());
        ip(&["-n", &hub, "addr", "add", &hub_addr, "dev", "br0"])?;
        for i in 0..self.members {
            let ns = self.node_ns(i);
            let (inner, outer) = (format!("{}n{i}", self.tag), format!("{}b{i}", self.tag));
            ip(&["netns", "add", &ns])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "link", "add", &inner, "netns", &ns, "type", "veth", "peer", "name", &outer,
                "netns", &hub,
            ])?;
            ip(&["-n", &hub, "link", "set", &outer, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &outer, "up"])?;
            let addr = format!("{}/24", self.addr(i));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", &inner])?;
            ip(&["-n", &ns, "link", "set", &inner, "up"])?;
        }
        Ok(())
    }

    /// The hub namespace: the bridge, and the test's clients once [`Netns::enter_hub`] moved
    /// them there.
    pub fn hub(&self) -> String {
        format!("{}hub", self.tag)
    }

    /// Member `i`'s namespace.
    pub fn node_ns(&self, i: usize) -> String {
        format!("{}node{i}", self.tag)
    }

    pub fn hub_addr(&self) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, 254)
    }

    /// Member `i`'s address.
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, i as u8 + 1)
    }

    /// Every member's address, for `cradle-genesis localnet --hosts`.
    pub fn hosts_arg(&self) -> String {
        (0..self.members)
            .map(|i| self.addr(i).to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Moves the calling thread into the hub namespace; threads it starts afterwards are
    /// there too. Its sockets then reach the members' addresses and nothing else.
    pub fn enter_hub(&self) -> anyhow::Result<()> {
        let path = format!("/run/netns/{}", self.hub());
        let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&file),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .with_context(|| format!("entering {path}"))?;
        Ok(())
    }

    /// Cuts the link between members `a` and `b`, both ways.
    pub fn cut(&mut self, a: usize, b: usize) -> anyhow::Result<()> {
        let pair = (a.min(b), a.max(b));
        if a == b || !self.cut.insert(pair) {
            return Ok(());
        }
        let (to_b, to_a) = (
            format!("{}/32", self.addr(b)),
            format!("{}/32", self.addr(a)),
        );
        ip(&["-n", &self.node_ns(a), "route", "add", "blackhole", &to_b])?;
        ip(&["-n", &self.node_ns(b), "route", "add", "blackhole", &to_a])
    }

    /// Restores the link between `a` and `b`.
    pub fn heal(&mut self, a: usize, b: usize) -> anyhow::Result<()> {
        let pair = (a.min(b), a.max(b));
        if !self.cut.remove(&pair) {
            return Ok(());
        }
        let (to_b, to_a) = (
            format!("{}/32", self.addr(b)),
            format!("{}/32", self.addr(a)),
        );
        ip(&["-n", &self.node_ns(a), "route", "del", "blackhole", &to_b])?;
        ip(&["-n", &self.node_ns(b), "route", "del", "blackhole", &to_a])
    }

    pub fn heal_all(&mut self) -> anyhow::Result<()> {
        for (a, b) in self.cut.clone() {
            self.heal(a, b)?;
        }
        Ok(())
    }

    /// Whether `a` and `b` can reach each other now.
    pub fn linked(&self, a: usize, b: usize) -> bool {
        a == b || !self.cut.contains(&(a.min(b), a.max(b)))
    }

    /// The links cut now.
    pub fn cut_links(&self) -> Vec<(usize, usize)> {
        self.cut.iter().copied().collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes the links inside it.
        for i in 0..self.members {
            let _ = ip(&["netns", "del", &self.node_ns(i)]);
        }
        let _ = ip(&["netns", "del", &self.hub()]);
    }
}
