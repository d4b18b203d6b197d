//! `ward fleet status`: canned Prometheus API answers read into the table and the
//! verdict, and the HTTP path against a tiny local server.
use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    process::ExitCode,
    thread,
};

use serde_json::json;

use super::{
    fleet::fleet_status,
    fleet_view::{agents, parse_vector, problems, table, AnswerError, Question, Sample},
};

/// An API answer holding `series`: (labels, value).
fn answer(series: &[(&[(&str, &str)], &str)]) -> String {
    let result: Vec<_> = series
        .iter()
        .map(|(labels, value)| {
            let metric: BTreeMap<_, _> = labels.iter().copied().collect();
            json!({"metric": metric, "value": [1_765_000_000.5, value]})
        })
        .collect();
    json!({"status": "success", "data": {"resultType": "vector", "result": result}}).to_string()
}

const H1: (&str, &str) = ("instance", "h1:9469");
const H2: (&str, &str) = ("instance", "h2:9469");
const H3: (&str, &str) = ("instance", "gw1:9469");
const JOB: (&str, &str) = ("job", "ward");

/// Three agents: h1 and gw1 healthy (gw1 in audit mode) on bundle 7; h2 as `h2` says.
fn fleet(
    h2_up: &str,
    h2_bundle: Option<&str>,
    h2_detached: Option<&str>,
) -> BTreeMap<Question, String> {
    let h2_labels: Vec<(&str, &str)> = match h2_bundle {
        Some("unsigned") => vec![H2, JOB, ("hash", "cc")],
        Some(v) => vec![
            H2,
            JOB,
            ("hash", "bb"),
            ("bundle_version", v),
            ("key_id", "k1"),
        ],
        None => vec![],
    };
    let h2_policy: Vec<(&[(&str, &str)], &str)> = match h2_bundle {
        Some(_) => vec![(&h2_labels[..], "1")],
        None => vec![],
    };
    let mut policy: Vec<(&[(&str, &str)], &str)> = vec![
        (
            &[
                H1,
                JOB,
                ("hash", "aa"),
                ("bundle_version", "7"),
                ("key_id", "k1"),
            ],
            "1",
        ),
        (
            &[
                H3,
                JOB,
                ("hash", "aa"),
                ("bundle_version", "7"),
                ("key_id", "k1"),
            ],
            "1",
        ),
    ];
    policy.extend(h2_policy);
    let detached: Vec<(&[(&str, &str)], &str)> = h2_detached
        .map(|n| vec![(&[H2][..], n)])
        .unwrap_or_default();
    BTreeMap::from([
        (
            Question::Up,
            answer(&[(&[H1, JOB], "1"), (&[H2, JOB], h2_up), (&[H3, JOB], "1")]),
        ),
        (
            Question::Info,
            answer(&[
                (&[H1, JOB, ("role", "host"), ("version", "0.1.0")], "1"),
                (&[H2, JOB, ("role", "host"), ("version", "0.1.0")], "1"),
                (&[H3, JOB, ("role", "gateway"), ("version", "0.1.0")], "1"),
            ]),
        ),
        (
            Question::Mode,
            answer(&[
                (&[H1, JOB, ("mode", "enforce")], "1"),
                (&[H2, JOB, ("mode", "enforce")], "1"),
                (&[H3, JOB, ("mode", "audit")], "1"),
            ]),
        ),
        (Question::Policy, answer(&policy)),
        (Question::Detached, answer(&detached)),
        (
            Question::Quarantined,
            answer(&[(&[H1, JOB], "0"), (&[H2, JOB], "2"), (&[H3, JOB], "0")]),
        ),
        (
            Question::Faults,
            answer(&[
                (&[H2, JOB, ("area", "policy-fetch")], "1"),
                (&[H2, JOB, ("area", "event-log")], "1"),
            ]),
        ),
    ])
}

/// The table and the problems of canned answers.
fn view(answers: &BTreeMap<Question, String>) -> (String, Vec<String>) {
    let parsed: BTreeMap<Question, Vec<Sample>> = answers
        .iter()
        .map(|(q, body)| (*q, parse_vector(body).unwrap()))
        .collect();
    let agents = agents(&parsed);
    (table(&agents), problems("ward", &agents))
}

#[test]
fn reads_a_prometheus_instant_vector() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"__name__":"up","instance":"h1:9469","job":"ward"},"value":[1765000000.123,"1"]},
        {"metric":{"instance":"h2:9469"},"value":[1765000000.123,"0"]}]}}"#;
    let samples = parse_vector(body).unwrap();
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].labels["instance"], "h1:9469");
    assert_eq!(samples[0].labels["__name__"], "up");
    assert_eq!((samples[0].value, samples[1].value), (1.0, 0.0));
}

#[test]
fn refuses_errors_matrices_and_garbage() {
    let error =
        r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected \"}\""}"#;
    assert_eq!(
        parse_vector(error),
        Err(AnswerError::Refused {
            kind: "bad_data".into(),
            message: "1:5: parse error: unexpected \"}\"".into()
        })
    );
    let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
    assert_eq!(
        parse_vector(matrix),
        Err(AnswerError::NotAVector("matrix".into()))
    );
    assert!(matches!(
        parse_vector("<html>"),
        Err(AnswerError::Malformed(_))
    ));
    let nan = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}"#;
    assert_eq!(
        parse_vector(nan),
        Err(AnswerError::Malformed(
            "the value \"x\" is not a number".into()
        ))
    );
}

#[test]
fn the_queries_select_the_job() {
    assert_eq!(
        Question::Mode.promql("ward"),
        r#"ward_mode{job="ward"} == 1"#
    );
    assert_eq!(
        Question::Detached.promql(r#"a"b\c"#),
        r#"count by (instance) (ward_attached{job="a\"b\\c"} == 0)"#
    );
}

#[test]
fn a_healthy_fleet_has_no_problem() {
    let (text, problems) = view(&fleet("1", Some("7"), None));
    assert_eq!(
        text,
        "INSTANCE  ROLE     MODE     BUNDLE  ENFORCING  QUARANTINED  FAULTS                  UP\n\
         gw1:9469  gateway  audit    7       audit                0  -                       yes\n\
         h1:9469   host     enforce  7       yes                  0  -                       yes\n\
         h2:9469   host     enforce  7       yes                  2  event-log,policy-fetch  yes\n"
    );
    assert_eq!(problems, Vec::<String>::new());
}

#[test]
fn drift_down_and_not_enforcing_are_problems() {
    let (_, drift) = view(&fleet("1", Some("8"), None));
    assert_eq!(
        drift,
        ["bundle version drift: 7 on gw1:9469, h1:9469; 8 on h2:9469"]
    );
    let (_, unsigned) = view(&fleet("1", Some("unsigned"), None));
    assert_eq!(
        unsigned,
        ["bundle version drift: 7 on gw1:9469, h1:9469; unsigned on h2:9469"]
    );
    let (text, down) = view(&fleet("0", None, None));
    assert_eq!(down, ["h2:9469 is down"]);
    assert_eq!(
        text.lines().nth(3),
        Some("h2:9469   host     enforce  -       -                    2  event-log,policy-fetch  no")
    );
    let (_, no_policy) = view(&fleet("1", None, None));
    assert_eq!(no_policy, ["h2:9469 is not enforcing: no policy"]);
    let (text, detached) = view(&fleet("1", Some("7"), Some("2")));
    assert_eq!(detached, ["h2:9469 is not enforcing: 2 hooks detached"]);
    assert!(text.contains(" no: 2 hooks detached "), "{text}");
    assert_eq!(
        problems("ward", &Default::default()),
        ["no agent of job ward is known to Prometheus"]
    );
}

/// `%XX` and `+` decoded.
fn decode(text: &str) -> String {
    let mut bytes = Vec::new();
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(&rest[..2]).unwrap();
                bytes.push(u8::from_str_radix(hex, 16).unwrap());
                rest = &rest[2..];
            }
            b => bytes.push(b),
        }
    }
    String::from_utf8(bytes).unwrap()
}

/// A tiny HTTP server of canned Prometheus answers, in a thread of the test.
struct Server {
    /// Its base URL.
    url: String,
    addr: std::net::SocketAddr,
    thread: thread::JoinHandle<Vec<String>>,
}

impl Server {
    /// Answers each query of `/api/v1/query` with its canned answer, or with `status`
    /// and `body` for every request when `fixed`; 404 for anything else.
    fn start(answers: BTreeMap<String, String>, fixed: Option<(u16, &'static str)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = thread::spawn(move || {
            let mut asked = Vec::new();
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.starts_with("STOP") {
                    break;
                }
                while reader.read_line(&mut String::new()).unwrap() > 2 {}
                let target = line.split(' ').nth(1).unwrap().to_owned();
                let query = target.strip_prefix("/api/v1/query?query=").map(decode);
                let (status, body) = match (fixed, &query) {
                    (Some((status, body)), _) => (status, body.to_owned()),
                    (None, Some(q)) if answers.contains_key(q) => (200, answers[q].clone()),
                    _ => (404, "not found".into()),
                };
                asked.push(query.unwrap_or(target));
                write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
            asked
        });
        Server {
            url: format!("http://{addr}"),
            addr,
            thread,
        }
    }

    /// Stops the server; returns the queries it was asked (or the request targets
    /// that were not queries), in order.
    fn stop(self) -> Vec<String> {
        let mut stop = std::net::TcpStream::connect(self.addr).unwrap();
        stop.write_all(b"STOP\r\n\r\n").unwrap();
        self.thread.join().unwrap()
    }
}

/// Runs `ward fleet status` against `url`: exit code, stdout, stderr.
fn run(url: &str) -> (ExitCode, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = fleet_status(url, "ward", &mut out, &mut err).unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (code, text(out), text(err))
}

#[test]
fn asks_prometheus_over_http() {
    let canned = fleet("1", Some("8"), None);
    let answers = canned
        .iter()
        .map(|(q, body)| (q.promql("ward"), body.clone()))
        .collect();
    let server = Server::start(answers, None);
    let (code, out, err) = run(&format!("{}/", server.url));
    let asked = server.stop();
    let expected: Vec<String> = Question::ALL.iter().map(|q| q.promql("ward")).collect();
    assert_eq!(asked, expected);
    assert_eq!(out, view(&canned).0);
    assert_eq!(
        err,
        "ward: fleet: bundle version drift: 7 on gw1:9469, h1:9469; 8 on h2:9469\n"
    );
    assert_eq!(code, ExitCode::FAILURE);

    let healthy = fleet("1", Some("7"), None);
    let answers = healthy
        .iter()
        .map(|(q, body)| (q.promql("ward"), body.clone()))
        .collect();
    let server = Server::start(answers, None);
    let (code, out, err) = run(&server.url);
    assert_eq!(server.stop().len(), Question::ALL.len());
    assert_eq!(
        (code, out, err),
        (ExitCode::SUCCESS, view(&healthy).0, String::new())
    );
}

#[test]
fn an_error_answer_or_no_answer_exits_2_naming_the_url() {
    let body = r#"{"status":"error","errorType":"bad_data","error":"unknown"}"#;
    let server = Server::start(BTreeMap::new(), Some((400, body)));
    let url = server.url.clone();
    let (code, out, err) = run(&url);
    assert_eq!(server.stop(), [r#"up{job="ward"}"#]);
    assert_eq!((code, out.as_str()), (ExitCode::from(2), ""));
    assert_eq!(
        err,
        format!(
            "ward: error: Prometheus at {url}/api/v1/query (HTTP 400) answered \
             `up{{job=\"ward\"}}` with an error: Prometheus answered bad_data: unknown\n"
        )
    );

    // A port nothing listens on any more.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (code, out, err) = run(&url);
    assert_eq!((code, out.as_str()), (ExitCode::from(2), ""));
    let prefix = format!("ward: error: cannot reach Prometheus at {url}/api/v1/query: ");
    assert!(err.starts_with(&prefix), "{err}");
}
