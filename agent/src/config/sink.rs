//! `event_sink`: where events go besides the event log, as a URL
//! (`syslog+tcp://host:port` or `syslog+tls://host:port`), checked when the
//! configuration is read.
use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer};

/// How the sink reaches its collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkTransport {
    /// Plain TCP (RFC 6587 octet counting).
    Tcp,
    /// TLS (RFC 5425), verified against `ca_file` or the web PKI roots.
    Tls,
}

/// A parsed `event_sink`: a syslog collector's host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkUrl {
    /// TCP or TLS.
    pub transport: SinkTransport,
    /// Host name or address (without the brackets of an IPv6 address); the TLS server
    /// name.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Why an `event_sink` URL is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SinkUrlError {
    /// Not `syslog+tcp://` or `syslog+tls://`.
    #[error("`{0}`: the scheme must be syslog+tcp:// or syslog+tls://")]
    Scheme(String),
    /// No `host:port` after the scheme, or something after it.
    #[error("`{0}`: expected syslog+tcp://HOST:PORT or syslog+tls://HOST:PORT")]
    Shape(String),
    /// The port is missing, not a number, or 0.
    #[error("`{0}`: the port must be a number from 1 to 65535")]
    Port(String),
}

impl FromStr for SinkUrl {
    type Err = SinkUrlError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let (transport, rest) = if let Some(rest) = url.strip_prefix("syslog+tcp://") {
            (SinkTransport::Tcp, rest)
        } else if let Some(rest) = url.strip_prefix("syslog+tls://") {
            (SinkTransport::Tls, rest)
        } else {
            return Err(SinkUrlError::Scheme(url.into()));
        };
        let shape = || SinkUrlError::Shape(url.into());
        let (host, port) = match rest.strip_prefix('[') {
            Some(v6) => {
                let (host, port) = v6.split_once("]:").ok_or_else(shape)?;
                host.parse::<std::net::Ipv6Addr>().map_err(|_| shape())?;
                (host, port)
            }
            None => rest.rsplit_once(':').ok_or_else(shape)?,
        };
        let bad_host = |c: char| c.is_whitespace() || "/?#@[]".contains(c);
        if host.is_empty() || host.contains(bad_host) || port.contains(bad_host) {
            return Err(shape());
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(SinkUrlError::Port(url.into())),
        };
        Ok(SinkUrl {
            transport,
            host: host.into(),
            port,
        })
    }
}

impl fmt::Display for SinkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.transport {
            SinkTransport::Tcp => "syslog+tcp",
            SinkTransport::Tls => "syslog+tls",
        };
        match self.host.contains(':') {
            true => write!(f, "{scheme}://[{}]:{}", self.host, self.port),
            false => write!(f, "{scheme}://{}:{}", self.host, self.port),
        }
    }
}

impl<'de> Deserialize<'de> for SinkUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_tls_and_ipv6_urls_parse() {
        let url: SinkUrl = "syslog+tcp://198.18.0.1:6514".parse().unwrap();
        assert_eq!(
            url,
            SinkUrl {
                transport: SinkTransport::Tcp,
                host: "198.18.0.1".into(),
                port: 6514
            }
        );
        let url: SinkUrl = "syslog+tls://siem.example:6514".parse().unwrap();
        assert_eq!(url.transport, SinkTransport::Tls);
        assert_eq!(url.host, "siem.example");
        let url: SinkUrl = "syslog+tcp://[2001:db8::1]:514".parse().unwrap();
        assert_eq!(url.host, "2001:db8::1");
        assert_eq!(url.to_string(), "syslog+tcp://[2001:db8::1]:514");
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        let err = |s: &str| s.parse::<SinkUrl>().unwrap_err().to_string();
        assert_eq!(
            err("syslog+udp://198.18.0.1:514"),
            "`syslog+udp://198.18.0.1:514`: the scheme must be syslog+tcp:// or syslog+tls://"
        );
        assert_eq!(
            err("syslog+tcp://198.18.0.1"),
            "`syslog+tcp://198.18.0.1`: expected syslog+tcp://HOST:PORT or syslog+tls://HOST:PORT"
        );
        assert_eq!(
            err("syslog+tcp://h:514/path"),
            "`syslog+tcp://h:514/path`: expected syslog+tcp://HOST:PORT or syslog+tls://HOST:PORT"
        );
        assert_eq!(
            err("syslog+tcp://h:0"),
            "`syslog+tcp://h:0`: the port must be a number from 1 to 65535"
        );
        assert_eq!(
            err("syslog+tls://h:65536"),
            "`syslog+tls://h:65536`: the port must be a number from 1 to 65535"
        );
        assert_eq!(
            err("syslog+tcp://[198.18.0.1]:514"),
            "`syslog+tcp://[198.18.0.1]:514`: expected syslog+tcp://HOST:PORT or syslog+tls://HOST:PORT"
        );
    }
}
