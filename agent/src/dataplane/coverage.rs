//! Which interfaces go unguarded: those named in `interfaces` that are not there
//! (yet), and those that are up without the agent's XDP program, whose forwarded
//! packets a gateway judges on egress only.
use netlink_packet_route::link::LinkLayerType;

use super::netlink::Link;

/// The interfaces the agent does not guard on ingress, as of the last watch pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Named in `interfaces` but not in this network namespace.
    pub missing: Vec<String>,
    /// Up, not loopback, and without the agent's XDP program (not configured,
    /// refused, or its program detached and not attached again yet).
    pub unguarded: Vec<String>,
}

/// The coverage of `links` when `named` are the interfaces `interfaces` names (not
/// its patterns) and `guarded` those whose XDP hook runs the agent's program.
pub(super) fn coverage(links: &[Link], named: &[String], guarded: &[&str]) -> Coverage {
    let missing = named
        .iter()
        .filter(|name| !links.iter().any(|l| &l.name == *name))
        .cloned()
        .collect();
    let mut unguarded: Vec<String> = links
        .iter()
        .filter(|l| l.up && l.link_type != LinkLayerType::Loopback)
        .filter(|l| !guarded.contains(&l.name.as_str()))
        .map(|l| l.name.clone())
        .collect();
    unguarded.sort();
    Coverage { missing, unguarded }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, link_type: LinkLayerType, up: bool) -> Link {
        Link {
            index: 1,
            name: name.into(),
            link_type,
            xdp_programs: Vec::new(),
            up,
        }
    }

    #[test]
    fn missing_names_and_unguarded_up_links() {
        let named = ["eth0".to_string(), "eth1".to_string()];
        let links = [
            link("lo", LinkLayerType::Loopback, true),
            link("eth0", LinkLayerType::Ether, true),
            link("wg0", LinkLayerType::None, true),
            link("eth7", LinkLayerType::Ether, true),
            link("eth8", LinkLayerType::Ether, false),
        ];
        let c = coverage(&links, &named, &["eth0"]);
        assert_eq!(c.missing, ["eth1"]);
        assert_eq!(c.unguarded, ["eth7", "wg0"], "down links and lo are not");
        let c = coverage(&links, &named, &["eth0", "eth7", "wg0"]);
        assert!(c.unguarded.is_empty(), "{c:?}");
    }
}
