//! What the user sees: progress on a terminal, plain lines otherwise, JSON
//! lines with --json. The engine emits events; a reporter renders them.
//!
//! The event protocol: every JSON line edgeup prints is a [`Line`], an
//! [`Event`] (tagged by `event`) followed by the protocol version `v`.
//! `edgeup fleet` reads its hosts' lines back with [`Line::decode`]. A host
//! may run another edgeup, so: unknown fields are ignored, a field added
//! after the first edition has a default, a missing `v` is 1, and a line
//! that is not an event this edgeup reads (not JSON, another kind, a value
//! of another type) is the host's `output`. Decoding never fails.

pub mod json;
pub mod plain;

use crate::steps::Diff;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The protocol version, `v` on every JSON line. It changes only when a
/// field changes meaning or type; a new field or event kind keeps it.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Changed,
    Failed,
    Skipped,
}

impl Status {
    /// The word the JSON line carries.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

/// Every event edgeup prints with --json. The derives make the inherent
/// `Event::serialize`/`Event::deserialize` (`remote = "Self"`); the trait
/// impls below wrap them, to tell the two `recap` shapes apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", tag = "event", rename_all = "snake_case")]
pub enum Event {
    Start {
        command: String,
        playbook: String,
        distro: String,
        steps: usize,
    },
    Warning {
        message: String,
    },
    Step {
        index: usize,
        total: usize,
        name: String,
        /// The site the step belongs to (None: host-wide).
        #[serde(skip_serializing_if = "Option::is_none")]
        site: Option<String>,
        /// In `plan`, `changed` means "would change".
        status: Status,
        handler: bool,
        changes: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        diff: Option<Diff>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        duration_ms: u64,
    },
    Recap {
        ok: usize,
        changed: usize,
        failed: usize,
        skipped: usize,
        /// Sites with a failed step (the other sites were converged).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        failed_sites: Vec<String>,
        mode: String,
        duration_ms: u64,
    },
    /// The command failed (the last line).
    Error {
        exit_code: i32,
        message: String,
    },
    /// A step of `uninstall`; `status`: note, nothing, planned, done or
    /// archive. (`message` first: the order these lines always had.)
    Uninstall {
        message: String,
        status: String,
    },
    /// A fleet host's line that is not an event this edgeup reads.
    Output {
        line: String,
    },
    /// How a fleet host ended (the line's `host` names it).
    HostRecap(HostRecap),
    /// A fleet's totals, its last line: tagged `recap` too, told apart from
    /// a run's recap by `hosts`.
    #[serde(rename = "recap", skip_deserializing)]
    FleetRecap(FleetRecap),
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The derived function (inherent functions come first).
        Event::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Event, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        if value["event"] == "recap" && value.get("hosts").is_some() {
            FleetRecap::deserialize(value)
                .map(Event::FleetRecap)
                .map_err(D::Error::custom)
        } else {
            // The derived function (inherent functions come first).
            Event::deserialize(value).map_err(D::Error::custom)
        }
    }
}

/// How a fleet host ended, as its `host_recap` line says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HostRecap {
    /// edgeup ran there: the host's own recap event (its claim), its exit
    /// code, and what fleet copied.
    Ran {
        recap: Box<Event>,
        exit_code: i32,
        copied: Vec<String>,
    },
    /// It could not be run; `unreachable` only for a network failure.
    Failed { error: String, unreachable: bool },
}

/// A fleet's totals: the hosts' own figures, summed saturating (a lying
/// host cannot overflow them), and how many hosts did not converge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetRecap {
    pub hosts: usize,
    pub ok: u64,
    pub changed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub unreachable: usize,
    pub hosts_failed: usize,
}

/// One JSON line: an event, the protocol version and, from `edgeup fleet`,
/// the host the event came from or is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line<E = Event> {
    #[serde(flatten)]
    pub event: E,
    /// Missing: 1 (an edgeup from before the key).
    #[serde(default = "first_version")]
    pub v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

fn first_version() -> u32 {
    1
}

impl<E> Line<E> {
    /// `event` in this edgeup's protocol version.
    pub fn new(event: E) -> Line<E> {
        Line {
            event,
            v: VERSION,
            host: None,
        }
    }
}

impl Line {
    /// A line another edgeup printed: its event, or the text as `output`
    /// when it is not an event this edgeup reads.
    pub fn decode(text: &str) -> Line {
        serde_json::from_str(text).unwrap_or_else(|_| {
            Line::new(Event::Output {
                line: text.to_string(),
            })
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

pub trait Reporter {
    /// A step is about to be checked (drives spinners; no output otherwise).
    fn begin(&mut self, _index: usize, _total: usize, _name: &str) {}
    fn event(&mut self, event: &Event);
}

/// The reporter for this invocation: JSON lines, or human output (with a
/// spinner only when stderr is a terminal).
pub fn for_output(json: bool, verbosity: Verbosity, show_diffs: bool) -> Box<dyn Reporter> {
    if json {
        Box::new(json::JsonReporter)
    } else {
        Box::new(plain::PlainReporter::new(verbosity, show_diffs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step() -> Event {
        Event::Step {
            index: 3,
            total: 12,
            name: "haproxy.cfg".into(),
            site: Some("chat.example.com".into()),
            status: Status::Changed,
            handler: false,
            changes: vec!["content differs".into()],
            diff: Some(Diff::Text("--- a\n+++ a\n".into())),
            message: Some("written".into()),
            duration_ms: 40,
        }
    }

    fn recap() -> Event {
        Event::Recap {
            ok: 7,
            changed: 4,
            failed: 1,
            skipped: 9,
            failed_sites: vec!["b.example.com".into()],
            mode: "apply".into(),
            duration_ms: 1200,
        }
    }

    fn every_variant() -> Vec<Event> {
        vec![
            Event::Start {
                command: "apply".into(),
                playbook: "open-webui".into(),
                distro: "debian-12".into(),
                steps: 12,
            },
            Event::Warning {
                message: "no firewall".into(),
            },
            step(),
            Event::Step {
                index: 1,
                total: 1,
                name: "key".into(),
                site: None,
                status: Status::Skipped,
                handler: true,
                changes: vec![],
                diff: Some(Diff::Secret),
                message: None,
                duration_ms: 0,
            },
            recap(),
            Event::Error {
                exit_code: 2,
                message: "bad site".into(),
            },
            Event::Uninstall {
                message: "HAProxy's configuration".into(),
                status: "planned".into(),
            },
            Event::Output {
                line: "raw \u{1b}[31m".into(),
            },
            Event::HostRecap(HostRecap::Ran {
                recap: Box::new(recap()),
                exit_code: 1,
                copied: vec!["site.yaml".into()],
            }),
            Event::HostRecap(HostRecap::Failed {
                error: "unreachable: ssh: connect".into(),
                unreachable: true,
            }),
            Event::FleetRecap(FleetRecap {
                hosts: 3,
                ok: u64::MAX,
                changed: 4,
                failed: 0,
                skipped: 18,
                unreachable: 1,
                hosts_failed: 0,
            }),
        ]
    }

    fn encode(line: &Line<&Event>) -> String {
        serde_json::to_string(line).unwrap()
    }

    #[test]
    fn every_event_reads_back_as_it_was_written() {
        for event in every_variant() {
            for host in [None, Some("web1".to_string())] {
                let line = Line {
                    host: host.clone(),
                    ..Line::new(&event)
                };
                let text = encode(&line);
                let back =
                    serde_json::from_str::<Line>(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
                assert_eq!(back.event, event, "{text}");
                assert_eq!((back.v, back.host), (VERSION, host), "{text}");
                assert_eq!(Line::decode(&text).event, event, "{text}");
            }
        }
    }

    #[test]
    fn lines_keep_their_keys_and_order_and_end_with_the_version() {
        let line = |e: &Event| encode(&Line::new(e));
        assert_eq!(
            line(&step()),
            r#"{"event":"step","index":3,"total":12,"name":"haproxy.cfg","site":"chat.example.com","status":"changed","handler":false,"changes":["content differs"],"diff":{"text":"--- a\n+++ a\n"},"message":"written","duration_ms":40,"v":1}"#
        );
        assert_eq!(
            line(&Event::Error {
                exit_code: 2,
                message: "bad".into()
            }),
            r#"{"event":"error","exit_code":2,"message":"bad","v":1}"#
        );
        assert_eq!(
            line(&Event::Uninstall {
                message: "m".into(),
                status: "done".into()
            }),
            r#"{"event":"uninstall","message":"m","status":"done","v":1}"#
        );
        let fleet = Event::FleetRecap(FleetRecap {
            hosts: 2,
            ..FleetRecap::default()
        });
        assert_eq!(
            line(&fleet),
            r#"{"event":"recap","hosts":2,"ok":0,"changed":0,"failed":0,"skipped":0,"unreachable":0,"hosts_failed":0,"v":1}"#
        );
        let failed = Event::HostRecap(HostRecap::Failed {
            error: "refused".into(),
            unreachable: false,
        });
        let failed = Line {
            host: Some("lab".into()),
            ..Line::new(&failed)
        };
        assert_eq!(
            encode(&failed),
            r#"{"event":"host_recap","error":"refused","unreachable":false,"v":1,"host":"lab"}"#
        );
    }

    #[test]
    fn statuses_are_named_as_the_lines_name_them() {
        for status in [Status::Ok, Status::Changed, Status::Failed, Status::Skipped] {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::from(status.as_str())
            );
        }
    }

    /// An older edgeup: no `v`, no `site` on a step, no `failed_sites`.
    #[test]
    fn a_line_without_the_version_is_version_1_with_defaults() {
        let line = Line::decode(
            r#"{"event":"recap","ok":7,"changed":0,"failed":0,"skipped":9,"mode":"apply","duration_ms":5}"#,
        );
        assert_eq!(line.v, 1);
        assert!(matches!(
            line.event,
            Event::Recap { ok: 7, ref failed_sites, .. } if failed_sites.is_empty()
        ));
        let step = Line::decode(
            r#"{"event":"step","index":1,"total":2,"name":"n","status":"ok","handler":false,"changes":[],"duration_ms":1}"#,
        );
        assert!(matches!(
            step.event,
            Event::Step {
                site: None,
                diff: None,
                message: None,
                status: Status::Ok,
                ..
            }
        ));
    }

    /// A newer edgeup: a higher `v`, fields this one does not know.
    #[test]
    fn unknown_fields_and_a_newer_version_are_read_as_far_as_known() {
        let line = Line::decode(
            r#"{"event":"warning","message":"m","colour":"red","nested":{"a":[1]},"v":2}"#,
        );
        assert_eq!(line.v, 2);
        assert_eq!(
            line.event,
            Event::Warning {
                message: "m".into()
            }
        );
        let recap = Line::decode(
            r#"{"event":"recap","ok":1,"changed":2,"failed":0,"skipped":0,"mode":"plan","duration_ms":1,"retries":3,"v":1}"#,
        );
        assert!(matches!(
            recap.event,
            Event::Recap {
                ok: 1,
                changed: 2,
                ..
            }
        ));
    }

    #[test]
    fn what_is_not_an_event_this_edgeup_reads_is_output() {
        for text in [
            r#"{"event":"progress","percent":50,"v":2}"#,
            r#"{"event":"step","status":"failed"}"#,
            r#"{"event":"step","index":1,"total":1,"name":"n","status":"cancelled","handler":false,"changes":[],"duration_ms":1}"#,
            r#"{"event":"recap","ok":-1,"changed":0,"failed":0,"skipped":0,"mode":"apply","duration_ms":1}"#,
            r#"{"event":"warning","message":"m","v":"two"}"#,
            r#"{"no":"event"}"#,
            "[1,2]",
            "42",
            "Reading package lists... Done",
            "{\"event\":\"warn",
            "",
            "\u{1b}]0;title\u{7}",
        ] {
            let line = Line::decode(text);
            assert_eq!(
                line.event,
                Event::Output {
                    line: text.to_string()
                },
                "{text}"
            );
            assert_eq!(line.v, VERSION);
        }
    }

    #[test]
    fn a_recap_with_hosts_is_a_fleets_and_one_without_is_a_runs() {
        let fleet = Line::decode(
            r#"{"event":"recap","hosts":1,"ok":1,"changed":0,"failed":0,"skipped":0,"unreachable":0,"hosts_failed":0}"#,
        );
        assert!(matches!(
            fleet.event,
            Event::FleetRecap(FleetRecap { hosts: 1, .. })
        ));
        let run = Line::decode(
            r#"{"event":"recap","ok":1,"changed":0,"failed":0,"skipped":0,"mode":"apply","duration_ms":1}"#,
        );
        assert!(matches!(run.event, Event::Recap { ok: 1, .. }));
    }
}
