//! The connection to the collector: TCP, or TLS over it (rustls, roots from
//! `ca_file` or the web PKI), with the bytes written counted on the TCP stream and
//! the bytes it has not yet had acknowledged read from the kernel (`SIOCOUTQ`).
use std::{
    io,
    os::fd::{AsRawFd, RawFd},
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{
    rustls::{self, pki_types::ServerName, ClientConfig, RootCertStore},
    TlsConnector,
};

/// Why the sink cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// `ca_file` cannot be read or holds no certificate.
    #[error("ca_file {path}: {why}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// rustls refused the settings.
    #[error("event_sink TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// Where the sink connects.
#[derive(Clone, Debug)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// TLS settings for `syslog+tls://`; `None` for plain TCP.
    pub tls: Option<Arc<ClientConfig>>,
}

/// The TLS client settings: rustls with ring, the CA certificates of `ca_file` or
/// else the web PKI roots.
pub fn tls_config(ca_file: Option<&Path>) -> Result<ClientConfig, SinkError> {
    let roots = match ca_file {
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
        Some(path) => {
            use rustls::pki_types::{pem::PemObject, CertificateDer};
            let bad = |why: String| SinkError::CaFile {
                path: path.to_owned(),
                why,
            };
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
                let cert = cert.map_err(|e| bad(e.to_string()))?;
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(bad("no CA certificate in it".into()));
            }
            roots
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A byte stream to the collector.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An open connection.
pub struct Connection {
    /// The stream events are written to (TLS or plain).
    pub stream: Box<dyn Stream>,
    /// The TCP socket, for [`Connection::acknowledged`].
    fd: RawFd,
    /// Bytes written to the TCP socket so far (TLS records included).
    written: Arc<std::sync::atomic::AtomicU64>,
}

impl Connection {
    /// Connects (and shakes hands, for TLS).
    pub async fn open(target: &Target) -> io::Result<Self> {
        let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
        tcp.set_nodelay(true)?;
        let fd = tcp.as_raw_fd();
        let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = Counted {
            inner: tcp,
            written: written.clone(),
        };
        let stream: Box<dyn Stream> = match &target.tls {
            None => Box::new(counted),
            Some(config) => {
                let name = ServerName::try_from(target.host.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let tls = TlsConnector::from(config.clone());
                Box::new(tls.connect(name, counted).await?)
            }
        };
        Ok(Connection {
            stream,
            fd,
            written,
        })
    }

    /// Bytes written to the TCP socket so far.
    pub fn written(&self) -> u64 {
        self.written.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes the collector's TCP stack has acknowledged: those written, less those
    /// still in the socket's send queue (`SIOCOUTQ`: unsent and unacknowledged).
    pub fn acknowledged(&self) -> io::Result<u64> {
        let mut queued: nix::libc::c_int = 0;
        // SAFETY: `fd` is the open socket `stream` owns; TIOCOUTQ (= SIOCOUTQ) writes
        // one int.
        let rc = unsafe { nix::libc::ioctl(self.fd, nix::libc::TIOCOUTQ, &mut queued) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let queued = u64::try_from(queued).unwrap_or(0);
        Ok(self.written().saturating_sub(queued))
    }
}

/// A TCP stream that counts the bytes written to it.
struct Counted {
    inner: TcpStream,
    written: Arc<std::sync::atomic::AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.written
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
