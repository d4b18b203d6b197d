//! What rtnetlink says about this network namespace: its interfaces (name, index,
//! link type, XDP programs) and the BPF filters on an interface's clsact egress hook.
//!
//! Netlink, not `/sys/class/net`: sysfs shows the namespace it was mounted in, which
//! for an agent started with `nsenter --net` is not the agent's own.
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::{
    link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage, LinkXdp},
    tc::{TcAttribute, TcFilterBpfOption, TcHandle, TcMessage, TcOption},
    RouteNetlinkMessage,
};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// Why netlink could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The socket could not be opened, written or read; or the kernel refused the request.
    #[error("netlink: {0}")]
    Io(#[from] std::io::Error),
    /// The kernel's answer could not be decoded.
    #[error("netlink: undecodable answer: {0}")]
    Decode(String),
}

/// One interface of this network namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// `ARPHRD_*` link type: only Ethernet frames carry the header the programs parse.
    pub link_type: LinkLayerType,
    /// Ids of the XDP programs attached to it (any mode).
    pub xdp_programs: Vec<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
}

impl Link {
    /// Whether its frames start with an Ethernet header (`ARPHRD_ETHER`).
    pub fn is_ethernet(&self) -> bool {
        self.link_type == LinkLayerType::Ether
    }
}

/// Every interface of this network namespace.
pub fn links() -> Result<Vec<Link>, NetlinkError> {
    let answers = dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
    Ok(answers
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(link) => Some(link),
            _ => None,
        })
        .map(|m| {
            let mut link = Link {
                index: m.header.index,
                name: String::new(),
                link_type: m.header.link_layer_type,
                xdp_programs: Vec::new(),
                up: m.header.flags.contains(LinkFlags::Up),
            };
            for attribute in m.attributes {
                match attribute {
                    LinkAttribute::IfName(name) => link.name = name,
                    LinkAttribute::Xdp(xdp) => {
                        link.xdp_programs.extend(xdp.iter().filter_map(|x| match x {
                            LinkXdp::ProgId(id)
                            | LinkXdp::DrvProgId(id)
                            | LinkXdp::SkbProgId(id)
                            | LinkXdp::HwProgId(id) => Some(*id),
                            _ => None,
                        }))
                    }
                    _ => {}
                }
            }
            // The same program shows up once per mode attribute.
            link.xdp_programs.sort_unstable();
            link.xdp_programs.dedup();
            link
        })
        .collect())
}

/// Ids of the BPF programs of the filters on `ifindex`'s clsact egress hook (how the
/// egress classifier is attached before kernel 6.6).
pub fn egress_filter_programs(ifindex: u32) -> Result<Vec<u32>, NetlinkError> {
    let mut request = TcMessage::with_index(ifindex as i32);
    request.header.parent = TcHandle {
        minor: TcHandle::MIN_EGRESS,
        ..TcHandle::CLSACT
    };
    let answers = dump(RouteNetlinkMessage::GetTrafficFilter(request))?;
    Ok(answers
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewTrafficFilter(filter) => Some(filter.attributes),
            _ => None,
        })
        .flatten()
        .filter_map(|a| match a {
            TcAttribute::Options(options) => Some(options),
            _ => None,
        })
        .flatten()
        .filter_map(|o| match o {
            TcOption::Bpf(TcFilterBpfOption::ProgId(id)) => Some(id),
            _ => None,
        })
        .collect())
}

/// Sends one dump request and collects the answers up to `NLMSG_DONE`.
fn dump(request: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut message = NetlinkMessage::new(NetlinkHeader::default(), request.into());
    message.header.flags = NLM_F_DUMP | NLM_F_REQUEST;
    message.header.sequence_number = 1;
    message.finalize();
    let mut buf = vec![0; message.buffer_len()];
    message.serialize(&mut buf);
    socket.send(&buf, 0)?;

    let mut answers = Vec::new();
    loop {
        let (datagram, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < datagram.len() {
            let answer: NetlinkMessage<RouteNetlinkMessage> =
                NetlinkMessage::deserialize(&datagram[offset..])
                    .map_err(|e| NetlinkError::Decode(e.to_string()))?;
            let length = answer.header.length as usize;
            match answer.payload {
                NetlinkPayload::Done(_) => return Ok(answers),
                NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io().into()),
                NetlinkPayload::InnerMessage(m) => answers.push(m),
                _ => {}
            }
            if length == 0 {
                break;
            }
            offset += length;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_loopback_with_its_link_type() {
        let links = links().expect("netlink dump");
        let lo = links.iter().find(|l| l.name == "lo").expect("lo is listed");
        assert_eq!(lo.index, 1);
        assert_eq!(lo.link_type, LinkLayerType::Loopback);
        assert!(!lo.is_ethernet());
    }
}
