//! A tiny HTTPS server of one bundle for `policy_url`: on an address (the loopback by
//! default) of a test namespace, with a certificate from a CA made for the test, an ETag per published
//! bundle and `304 Not Modified` for a matching `If-None-Match`. It logs every request.
use std::{
    convert::Infallible,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use http_body_util::Full;
use hyper::{body::Bytes, header, server::conn::http1, service::service_fn, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio_rustls::{
    rustls::{
        pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer},
        ServerConfig,
    },
    TlsAcceptor,
};
use ward_tests::Netns;

/// One request as the server answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// The `If-None-Match` it carried.
    pub if_none_match: Option<String>,
    /// 200 or 304.
    pub status: u16,
}

/// What is published, and what was asked.
#[derive(Default)]
struct Shared {
    body: Vec<u8>,
    etag: String,
    published: u32,
    log: Vec<Served>,
}

/// The server; stops on drop (or [`BundleServer::stop`]).
pub struct BundleServer {
    url: String,
    ca_file: PathBuf,
    shared: Arc<Mutex<Shared>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl BundleServer {
    /// Serves `https://127.0.0.1:PORT/policy.bundle` on the loopback of `ns`; writes
    /// the CA certificate the agent must trust to `dir/ca.pem`.
    pub fn start(ns: &Netns, dir: &Path) -> BundleServer {
        Self::start_at(ns, dir, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Like [`BundleServer::start`], listening on `listen` of `ns` (port 0: any), with
    /// a certificate for its address.
    pub fn start_at(ns: &Netns, dir: &Path, listen: SocketAddr) -> BundleServer {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let key = KeyPair::generate().expect("server key");
        let cert = CertificateParams::new(vec![listen.ip().to_string()])
            .expect("server params")
            .signed_by(&key, &ca)
            .expect("server certificate");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("ca.pem");
        let tls = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("TLS config");

        // Bound inside the namespace: the socket stays there whichever thread serves it.
        let listener = ns
            .enter(|| std::net::TcpListener::bind(listen))
            .expect("enter the namespace")
            .expect("bind on the namespace's loopback");
        listener.set_nonblocking(true).expect("non-blocking");
        let url = format!(
            "https://{}/policy.bundle",
            listener.local_addr().expect("address")
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let state = shared.clone();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, state) = (acceptor.clone(), state.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |request| answer(request, state.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        BundleServer {
            url,
            ca_file,
            shared,
            runtime: Some(runtime),
        }
    }

    /// Serves `body` from now on, under a new ETag (returned).
    pub fn publish(&self, body: &[u8]) -> String {
        let mut s = self.shared.lock().expect("server state");
        s.published += 1;
        s.body = body.to_vec();
        s.etag = format!("\"bundle-{}\"", s.published);
        s.etag.clone()
    }

    /// Every request so far.
    pub fn served(&self) -> Vec<Served> {
        self.shared.lock().expect("server state").log.clone()
    }

    /// The bundle's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The CA certificate file (PEM) that signed the server's certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// Stops serving: connections are refused from now on.
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for BundleServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// 304 when `If-None-Match` is the current ETag, else 200 with the bundle.
async fn answer(
    request: hyper::Request<hyper::body::Incoming>,
    state: Arc<Mutex<Shared>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let if_none_match = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut s = state.lock().expect("server state");
    let fresh = if_none_match.as_deref() == Some(s.etag.as_str());
    let (status, body) = match fresh {
        true => (StatusCode::NOT_MODIFIED, Bytes::new()),
        false => (StatusCode::OK, Bytes::from(s.body.clone())),
    };
    s.log.push(Served {
        if_none_match,
        status: status.as_u16(),
    });
    let response = Response::builder()
        .status(status)
        .header(header::ETAG, s.etag.as_str())
        .body(Full::new(body))
        .expect("response");
    Ok(response)
}
