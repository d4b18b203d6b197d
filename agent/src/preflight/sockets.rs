//! The established TCP connections of this network namespace, from the kernel's
//! socket table (`/proc/self/net/tcp` and `/proc/self/net/tcp6`: no root needed, and
//! visible under `ward.service`'s `ProcSubset=pid`, which hides `/proc/net`).
use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::Path,
};

use super::PreflightError;

/// The socket tables read, IPv4 then IPv6.
pub const TABLES: [&str; 2] = ["/proc/self/net/tcp", "/proc/self/net/tcp6"];

/// `st` of an established connection in the socket table (`TCP_ESTABLISHED`).
const ESTABLISHED: &str = "01";

/// One established TCP connection, as this host sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Session {
    /// The other end (an IPv4-mapped IPv6 address is given as IPv4, as the wire has it).
    pub remote: SocketAddr,
    /// This host's end.
    pub local: SocketAddr,
}

/// `198.18.24.10 → 198.18.24.1:22`: the remote address (its port is ephemeral), then
/// this host's address and port.
impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {}", self.remote.ip(), self.local)
    }
}

/// The established connections of the caller's network namespace. A missing IPv6
/// table (IPv6 disabled) holds none.
pub fn established() -> Result<Vec<Session>, PreflightError> {
    let mut sessions = Vec::new();
    for table in TABLES {
        let path = Path::new(table);
        match std::fs::read_to_string(path) {
            Ok(text) => sessions.extend(parse_table(path, &text)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(PreflightError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
    Ok(sessions)
}

/// The established connections of one socket table's `text` (its header line first),
/// read from `path` (named in errors).
pub fn parse_table(path: &Path, text: &str) -> Result<Vec<Session>, PreflightError> {
    let mut sessions = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let bad = || PreflightError::Line {
            path: path.to_owned(),
            line: n + 1,
            text: line.trim().to_owned(),
        };
        let mut fields = line.split_whitespace().skip(1);
        let (Some(local), Some(remote), Some(state)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(bad());
        };
        let (Some(local), Some(remote)) = (endpoint(local), endpoint(remote)) else {
            return Err(bad());
        };
        if state == ESTABLISHED {
            sessions.push(Session { remote, local });
        }
    }
    Ok(sessions)
}

/// `0100007F:0016` (IPv4) or 32 hex digits and a port (IPv6): the address as the
/// kernel prints it, each 32-bit word in this host's byte order, then the port.
fn endpoint(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| {
        let hex = addr.get(i * 8..i * 8 + 8)?;
        u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(i)?);
            }
            let v6 = Ipv6Addr::from(bytes);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    const V4: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 011812C6:0016 0A1812C6:D431 01 00000000:00000000 02:000A7D2B 00000000     0        0 1002 2 0000000000000000 20 4 30 10 -1
   2: 011812C6:0016 0B1812C6:D432 06 00000000:00000000 03:00000ABC 00000000     0        0 0 3 0000000000000000
";

    const V6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: B80D0120000024000000000001000000:0016 B80D0120000024000000000010000000:E2A4 01 00000000:00000000 02:00000D6C 00000000     0        0 2001 2 0000000000000000 20 4 29 10 -1
   1: 0000000000000000FFFF0000011812C6:0016 0000000000000000FFFF00000A1812C6:C350 01 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 20 4 29 10 -1
";

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("socket address")
    }

    #[test]
    fn only_established_ipv4_connections_are_taken() {
        let sessions = parse_table(Path::new("/proc/net/tcp"), V4).expect("parses");
        assert_eq!(
            sessions,
            vec![Session {
                remote: addr("198.18.24.10:54321"),
                local: addr("198.18.24.1:22"),
            }]
        );
        assert_eq!(sessions[0].to_string(), "198.18.24.10 → 198.18.24.1:22");
    }

    #[test]
    fn ipv6_words_and_mapped_ipv4_addresses_are_read() {
        let sessions = parse_table(Path::new("/proc/net/tcp6"), V6).expect("parses");
        assert_eq!(
            sessions,
            vec![
                Session {
                    remote: addr("[2001:db8:24::10]:58020"),
                    local: addr("[2001:db8:24::1]:22"),
                },
                Session {
                    remote: addr("198.18.24.10:50000"),
                    local: addr("198.18.24.1:22"),
                },
            ]
        );
        assert_eq!(
            sessions[0].to_string(),
            "2001:db8:24::10 → [2001:db8:24::1]:22"
        );
    }

    #[test]
    fn a_line_that_is_not_a_socket_names_its_file_and_line() {
        let text = "header\n   0: 011812C6:0016 zz 01\n";
        let e = parse_table(Path::new("/proc/net/tcp"), text).expect_err("refused");
        assert_eq!(
            e.to_string(),
            "/proc/net/tcp:2: not a socket table line: `0: 011812C6:0016 zz 01`"
        );
    }
}
