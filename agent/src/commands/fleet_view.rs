//! `ward fleet status`'s view of the fleet, pure: the PromQL it asks, the Prometheus
//! HTTP API answers read into one row per agent, the verdict (down, not enforcing,
//! bundle drift) and the table.
use std::collections::BTreeMap;

use serde::Deserialize;

use super::table::{plain, render};

/// What a query answered that cannot be read as an instant vector.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum AnswerError {
    /// Not the JSON of the Prometheus HTTP API.
    #[error("not a Prometheus API answer: {0}")]
    Malformed(String),
    /// Prometheus answered `"status": "error"`.
    #[error("Prometheus answered {kind}: {message}")]
    Refused {
        /// `errorType`, e.g. `bad_data`.
        kind: String,
        /// `error`.
        message: String,
    },
    /// A result that is not an instant vector.
    #[error("the answer is a {0}, not a vector")]
    NotAVector(String),
}

/// One series of an instant vector: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    /// The series' labels (`instance`, `job`, …).
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// The Prometheus API's envelope (`/api/v1/query`).
#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    metric: BTreeMap<String, String>,
    /// `[unix time, "value"]`.
    value: (f64, String),
}

/// Reads an answer of `/api/v1/query` holding an instant vector.
pub(crate) fn parse_vector(body: &str) -> Result<Vec<Sample>, AnswerError> {
    let envelope: Envelope =
        serde_json::from_str(body).map_err(|e| AnswerError::Malformed(e.to_string()))?;
    if envelope.status != "success" {
        return Err(AnswerError::Refused {
            kind: envelope
                .error_type
                .unwrap_or_else(|| envelope.status.clone()),
            message: envelope.error.unwrap_or_default(),
        });
    }
    let data = envelope
        .data
        .ok_or_else(|| AnswerError::Malformed("no data".into()))?;
    if data.result_type != "vector" {
        return Err(AnswerError::NotAVector(data.result_type));
    }
    data.result
        .into_iter()
        .map(|s| {
            let value = s.value.1.parse().map_err(|_| {
                AnswerError::Malformed(format!("the value {:?} is not a number", s.value.1))
            })?;
            Ok(Sample {
                labels: s.metric,
                value,
            })
        })
        .collect()
}

/// The questions asked of Prometheus, one instant query each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Question {
    /// `up`: the scrape answered.
    Up,
    /// `ward_info`: the role.
    Info,
    /// `ward_mode == 1`: the mode in force.
    Mode,
    /// `ward_policy_info`: the bundle version in force.
    Policy,
    /// Hooks without their program, counted per agent.
    Detached,
    /// `ward_quarantined_hosts`.
    Quarantined,
    /// `ward_fault == 1`: the fault areas in force.
    Faults,
}

impl Question {
    /// Every question, in the order they are asked.
    pub(crate) const ALL: [Question; 7] = [
        Question::Up,
        Question::Info,
        Question::Mode,
        Question::Policy,
        Question::Detached,
        Question::Quarantined,
        Question::Faults,
    ];

    /// The PromQL of the question for the agents of scrape job `job`.
    pub(crate) fn promql(self, job: &str) -> String {
        let job = job.replace('\\', "\\\\").replace('"', "\\\"");
        let sel = format!("{{job=\"{job}\"}}");
        match self {
            Question::Up => format!("up{sel}"),
            Question::Info => format!("ward_info{sel}"),
            Question::Mode => format!("ward_mode{sel} == 1"),
            Question::Policy => format!("ward_policy_info{sel}"),
            Question::Detached => format!("count by (instance) (ward_attached{sel} == 0)"),
            Question::Quarantined => format!("ward_quarantined_hosts{sel}"),
            Question::Faults => format!("ward_fault{sel} == 1"),
        }
    }
}

/// What Prometheus knows of one agent.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Agent {
    /// `up`: None when Prometheus has no `up` series for it.
    pub up: Option<bool>,
    /// `host` or `gateway`.
    pub role: Option<String>,
    /// `enforce` or `audit`.
    pub mode: Option<String>,
    /// The bundle version in force, `unsigned` for an unsigned policy; None without a policy.
    pub bundle: Option<String>,
    /// Hooks without their program.
    pub detached: u64,
    /// Hosts quarantined now.
    pub quarantined: Option<u64>,
    /// Fault areas in force.
    pub faults: Vec<String>,
}

impl Agent {
    /// `yes` (enforce mode) or `audit` when a policy is in force on every hook, else
    /// `no` and why; `-` when the agent is down.
    fn enforcing(&self) -> String {
        if self.up != Some(true) {
            return "-".into();
        }
        match (&self.bundle, self.detached) {
            (None, _) => "no: no policy".into(),
            (_, 1) => "no: 1 hook detached".into(),
            (_, n) if n > 1 => format!("no: {n} hooks detached"),
            _ if self.mode.as_deref() == Some("audit") => "audit".into(),
            _ => "yes".into(),
        }
    }
}

/// The agents of the fleet by `instance`, from the answers to [`Question::ALL`].
pub(crate) fn agents(answers: &BTreeMap<Question, Vec<Sample>>) -> BTreeMap<String, Agent> {
    let mut agents: BTreeMap<String, Agent> = BTreeMap::new();
    for (question, samples) in answers {
        for s in samples {
            let Some(instance) = s.label("instance") else {
                continue;
            };
            let a = agents.entry(instance.to_owned()).or_default();
            let label = |name| s.label(name).map(str::to_owned);
            match question {
                Question::Up => a.up = Some(s.value == 1.0),
                Question::Info => a.role = label("role"),
                Question::Mode => a.mode = label("mode"),
                Question::Policy => {
                    a.bundle = Some(label("bundle_version").unwrap_or_else(|| "unsigned".into()))
                }
                Question::Detached => a.detached = s.value as u64,
                Question::Quarantined => a.quarantined = Some(s.value as u64),
                Question::Faults => a.faults.extend(label("area")),
            }
        }
    }
    for a in agents.values_mut() {
        a.faults.sort();
    }
    agents
}

/// What is wrong with the fleet, one line each; empty when every agent is up,
/// enforcing as configured (audit mode included) and on one bundle version.
pub(crate) fn problems(job: &str, agents: &BTreeMap<String, Agent>) -> Vec<String> {
    if agents.is_empty() {
        return vec![format!("no agent of job {job} is known to Prometheus")];
    }
    let mut found = Vec::new();
    let mut versions: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (instance, a) in agents {
        match a.up {
            Some(true) => {}
            Some(false) => found.push(format!("{instance} is down")),
            None => found.push(format!("{instance} is not scraped (no up series)")),
        }
        let enforcing = a.enforcing();
        if let Some(why) = enforcing.strip_prefix("no: ") {
            found.push(format!("{instance} is not enforcing: {why}"));
        }
        if let Some(b) = &a.bundle {
            versions.entry(b).or_default().push(instance);
        }
    }
    if versions.len() > 1 {
        let each: Vec<String> = versions
            .iter()
            .map(|(v, who)| format!("{v} on {}", who.join(", ")))
            .collect();
        found.push(format!("bundle version drift: {}", each.join("; ")));
    }
    found
}

/// The table of the agents: INSTANCE, ROLE, MODE, BUNDLE, ENFORCING, QUARANTINED,
/// FAULTS, UP.
pub(crate) fn table(agents: &BTreeMap<String, Agent>) -> String {
    let header = [
        "INSTANCE",
        "ROLE",
        "MODE",
        "BUNDLE",
        "ENFORCING",
        "QUARANTINED",
        "FAULTS",
        "UP",
    ];
    let mut t = plain(&header, &[5]);
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    for (instance, a) in agents {
        let faults = if a.faults.is_empty() {
            "-".into()
        } else {
            a.faults.join(",")
        };
        t.add_row(vec![
            instance.clone(),
            or_dash(&a.role),
            or_dash(&a.mode),
            or_dash(&a.bundle),
            a.enforcing(),
            a.quarantined.map_or("-".into(), |n| n.to_string()),
            faults,
            match a.up {
                Some(true) => "yes".into(),
                Some(false) => "no".into(),
                None => "-".into(),
            },
        ]);
    }
    render(&t)
}
