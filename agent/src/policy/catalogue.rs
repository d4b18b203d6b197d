//! The built-in catalogue of named services that rules may allow with
//! `services = ["dicom", …]` instead of spelling out their ports.
//!
//! Port numbers are those of the IANA Service Name and Transport Protocol Port Number
//! Registry (<https://www.iana.org/assignments/service-names-port-numbers>), under the
//! registered name given with each entry. A name expands to exactly the ports listed, so
//! `services = ["dicom"]` compiles to the same dataplane entries as `tcp = [104, 11112]`.
use serde::Serialize;

use super::Protocol;

/// A named service: the destination ports it uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct KnownService {
    /// Name used in rules.
    pub name: &'static str,
    /// TCP destination ports.
    pub tcp: &'static [u16],
    /// UDP destination ports.
    pub udp: &'static [u16],
    /// What it is.
    pub description: &'static str,
    /// The IANA registration (service name) the ports come from, or why there is none.
    pub iana: &'static str,
}

impl KnownService {
    /// Its destination ports of `protocol` (none for ICMP).
    pub fn ports(&self, protocol: Protocol) -> &'static [u16] {
        match protocol {
            Protocol::Tcp => self.tcp,
            Protocol::Udp => self.udp,
            Protocol::Icmp => &[],
        }
    }
}

/// Shorthand for the table below.
const fn service(
    name: &'static str,
    tcp: &'static [u16],
    udp: &'static [u16],
    description: &'static str,
    iana: &'static str,
) -> KnownService {
    KnownService {
        name,
        tcp,
        udp,
        description,
        iana,
    }
}

/// Every named service, sorted by name.
#[rustfmt::skip]
pub const CATALOGUE: &[KnownService] = &[
    service("dicom", &[104, 11112], &[], "DICOM store, query/retrieve", "acr-nema 104/tcp, dicom 11112/tcp"),
    service("dicom-tls", &[2762], &[], "DICOM over TLS", "dicom-tls 2762/tcp"),
    service("dns", &[53], &[53], "Domain name service", "domain 53/tcp, 53/udp"),
    service("fhir", &[443], &[], "HL7 FHIR REST API over HTTPS", "none of its own: https 443/tcp"),
    service("hl7-mllp", &[2575], &[], "HL7 v2 messages over MLLP", "hl7 2575/tcp"),
    service("http", &[80], &[], "Web, plain HTTP", "http 80/tcp"),
    service("https", &[443], &[], "Web over TLS", "https 443/tcp"),
    service("kerberos", &[88], &[88], "Kerberos authentication", "kerberos 88/tcp, 88/udp"),
    service("ldap", &[389], &[], "Directory (LDAP, StartTLS)", "ldap 389/tcp"),
    service("ldaps", &[636], &[], "Directory over TLS", "ldaps 636/tcp"),
    service("ntp", &[], &[123], "Network time", "ntp 123/udp"),
    service("rdp", &[3389], &[], "Remote desktop", "ms-wbt-server 3389/tcp"),
    service("smb", &[445], &[], "Windows file sharing", "microsoft-ds 445/tcp"),
    service("ssh", &[22], &[], "Secure shell", "ssh 22/tcp"),
    service("syslog", &[], &[514], "Syslog", "syslog 514/udp"),
    service("syslog-tls", &[6514], &[], "Syslog over TLS", "syslog-tls 6514/tcp"),
];

/// The service called `name`.
pub fn lookup(name: &str) -> Option<&'static KnownService> {
    CATALOGUE
        .binary_search_by(|s| s.name.cmp(name))
        .ok()
        .map(|i| &CATALOGUE[i])
}

/// The catalogued name closest to `name`, when close enough to be a likely typo.
pub(crate) fn suggest(name: &str) -> Option<&'static str> {
    super::diagnostic::suggest(name, CATALOGUE.iter().map(|s| s.name))
}
