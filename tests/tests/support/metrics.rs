//! Reading an agent's metrics endpoint from inside its namespace.
use std::{
    collections::HashMap,
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use ward_tests::Netns;

/// Scrapes `GET /metrics` at `addr` inside `ns`: series (with labels) → value.
pub fn scrape(ns: &Netns, addr: &str) -> HashMap<String, f64> {
    let body = ns
        .enter(|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(addr)?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        })
        .expect("enter the namespace")
        .expect("scrape /metrics");
    let (head, body) = body.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "metrics answered {head}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("metric line {l}"));
            (
                series.to_string(),
                value
                    .parse()
                    .unwrap_or_else(|_| panic!("metric value in {l}")),
            )
        })
        .collect()
}
