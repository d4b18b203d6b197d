//! `ward fleet status --prometheus URL`: the fleet as the Prometheus that scrapes it
//! sees it, through its HTTP API (`/api/v1/query`, instant queries); no Ward server.
//! Exit 0 when every agent is up, enforcing as configured and on one bundle version,
//! 1 when one is not (each problem on stderr), 2 when Prometheus cannot be asked.
use std::{collections::BTreeMap, io::Write, process::ExitCode, time::Duration};

use super::fleet_view::{agents, parse_vector, problems, table, AnswerError, Question, Sample};

/// The longest one query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The most bytes of one answer read.
const MAX_ANSWER_BYTES: u64 = 16 << 20;

/// Why Prometheus could not be asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FleetError {
    /// No answer (connection refused, timeout, bad URL…).
    #[error("cannot reach Prometheus at {url}: {message}")]
    Unreachable {
        /// The query URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// An answer that is not the instant vector asked for.
    #[error("Prometheus at {url} (HTTP {status}) answered `{query}` with an error: {source}")]
    Answer {
        /// The query URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The PromQL asked.
        query: String,
        /// What was wrong with the answer.
        source: AnswerError,
    },
}

/// Asks Prometheus at `prometheus` (its base URL, e.g. `http://prom:9090`) about the
/// agents of scrape job `job`; prints the table on `out`, problems and errors on `err`.
pub fn fleet_status(
    prometheus: &str,
    job: &str,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<ExitCode> {
    let url = format!("{}/api/v1/query", prometheus.trim_end_matches('/'));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(QUERY_TIMEOUT))
        .build()
        .into();
    let mut answers = BTreeMap::new();
    for question in Question::ALL {
        match query(&agent, &url, &question.promql(job)) {
            Ok(samples) => answers.insert(question, samples),
            Err(e) => {
                writeln!(err, "ward: error: {e}")?;
                return Ok(ExitCode::from(2));
            }
        };
    }
    let agents = agents(&answers);
    out.write_all(table(&agents).as_bytes())?;
    let problems = problems(job, &agents);
    for p in &problems {
        writeln!(err, "ward: fleet: {p}")?;
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One instant query.
fn query(agent: &ureq::Agent, url: &str, promql: &str) -> Result<Vec<Sample>, FleetError> {
    let unreachable = |message: String| FleetError::Unreachable {
        url: url.to_owned(),
        message,
    };
    let mut response = agent
        .get(url)
        .query("query", promql)
        .call()
        .map_err(|e| unreachable(e.to_string()))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
        .map_err(|e| unreachable(format!("reading the answer: {e}")))?;
    parse_vector(&body).map_err(|source| FleetError::Answer {
        url: url.to_owned(),
        status,
        query: promql.to_owned(),
        source,
    })
}
