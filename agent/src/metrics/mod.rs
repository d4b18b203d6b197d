//! The Prometheus endpoint (`metrics_listen` in the agent configuration).
//!
//! Each scrape of `GET /metrics` reads the kernel counters and the agent's status at
//! that moment and answers them in the OpenMetrics text format; nothing is kept
//! between scrapes. `docs/metrics.md` lists the metrics.
//!
//! - [`serve`]: the HTTP endpoint.
//! - [`encode`]: the encoding itself, a pure function of a status and a counter snapshot.
mod collect;
#[cfg(test)]
mod dashboard_tests;
mod encode;
#[cfg(test)]
mod encode_tests;
#[cfg(test)]
mod fixtures;
mod http;
#[cfg(test)]
mod http_tests;

pub use collect::encode;
pub use http::serve;

/// Content type of a successful answer to `GET /metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
