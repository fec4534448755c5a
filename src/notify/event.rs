//! The events and the pure decision of which ones a run produces.

use super::state::{Attempt, Outcome, State};
use serde::{Serialize, Serializer};

const DAY: i64 = 86_400;

/// One site as `renew` sees it after its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cert {
    pub domain: String,
    /// Every name on the site's certificate (the domain and its aliases).
    pub names: Vec<String>,
    /// The served certificate's expiry (unix seconds); None when none is readable.
    pub not_after: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A due (re)issuance failed.
    RenewalFailed,
    /// Fewer than `days_before_expiry` days left and no success in this run.
    ExpiryNear,
    /// A success after an announced failure.
    Renewed,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::RenewalFailed => "renewal_failed",
            AlertKind::ExpiryNear => "expiry_near",
            AlertKind::Renewed => "renewed",
        }
    }
}

impl std::fmt::Display for AlertKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a hook receives, as one JSON object (on a command's stdin, or as a
/// webhook's POST body). It holds no secret and no configuration:
///
/// ```json
/// {"event":"renewal_failed","domain":"chat.example.com",
///  "names":["chat.example.com","www.chat.example.com"],
///  "not_after":"2026-03-01T12:00:00Z","days_left":9,
///  "error":"ordering the certificate: rate limited","host":"web1",
///  "at":"2026-02-20T06:00:03Z"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// `"event"`: `"renewal_failed"`, `"expiry_near"` or `"renewed"`.
    #[serde(rename = "event")]
    pub kind: AlertKind,
    /// `"domain"`: the site's domain (its certificate's first name).
    pub domain: String,
    /// `"names"`: every name the certificate covers, the domain first.
    pub names: Vec<String>,
    /// `"not_after"`: the served certificate's expiry, RFC 3339 UTC
    /// (`2026-03-01T12:00:00Z`); `null` when no certificate is readable
    /// (a first issuance that failed). For `renewed`: the new certificate's.
    #[serde(serialize_with = "rfc3339_opt")]
    pub not_after: Option<i64>,
    /// `"days_left"`: whole days until `not_after` (negative once expired);
    /// `null` with it.
    pub days_left: Option<i64>,
    /// `"error"`: why the attempt failed, one line; only in `renewal_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `"host"`: the hostname of the machine that ran edgeup.
    pub host: String,
    /// `"at"`: when it happened, RFC 3339 UTC: the attempt's time for
    /// `renewal_failed` and `renewed`, the run's for `expiry_near`.
    #[serde(serialize_with = "rfc3339_ser")]
    pub at: i64,
}

impl Alert {
    /// The JSON object hooks receive.
    pub fn to_json(&self) -> String {
        // Serializing strings, integers and a Vec<String> cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Unix seconds as RFC 3339 UTC (`2026-03-01T12:00:00Z`); clamped to
/// 0000-01-01..9999-12-31.
pub fn rfc3339(unix: i64) -> String {
    /// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
    const FIRST: i64 = -62_167_219_200;
    const LAST: i64 = 253_402_300_799;
    let t = time::OffsetDateTime::from_unix_timestamp(unix.clamp(FIRST, LAST))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The UTC day of `unix`, `YYYY-MM-DD`.
fn utc_day(unix: i64) -> String {
    rfc3339(unix.div_euclid(DAY) * DAY)[..10].to_string()
}

fn rfc3339_ser<S: Serializer>(unix: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*unix))
}

fn rfc3339_opt<S: Serializer>(unix: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match unix {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// The run the events are decided for.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// The run's id: the attempts recorded with it are this run's.
    pub id: &'a str,
    pub now: i64,
    /// Goes into every event's `host`.
    pub hostname: &'a str,
}

/// The events for one certificate after a run, and its new state (pure).
///
/// - every failed attempt of this run: `renewal_failed`;
/// - a success after a failure (this run's or an earlier announced one):
///   `renewed`; a success with no failure before it: nothing;
/// - fewer than `days_before_expiry` days left, no success in this run and
///   no `expiry_near` yet on this UTC day: `expiry_near` (also when the run
///   attempted nothing: a renewal that never happens is what it catches).
pub fn events_for(
    cert: &Cert,
    state: &State,
    run: &Run,
    days_before_expiry: u32,
) -> (Vec<Alert>, State) {
    let mut next = state.clone();
    let mut events = Vec::new();
    let event = |kind, at, error| Alert {
        kind,
        domain: cert.domain.clone(),
        names: cert.names.clone(),
        not_after: cert.not_after,
        days_left: cert.not_after.map(|t| (t - run.now).div_euclid(DAY)),
        error,
        host: run.hostname.to_string(),
        at,
    };
    let this_run: Vec<&Attempt> = state.attempts.iter().filter(|a| a.run == run.id).collect();
    for (place, attempt) in state.attempts.iter().enumerate() {
        if attempt.run != run.id || attempt.announced {
            continue;
        }
        if let Some(decided) = next.attempts.get_mut(place) {
            decided.announced = true;
        }
        match &attempt.outcome {
            Outcome::Failed(error) => {
                events.push(event(
                    AlertKind::RenewalFailed,
                    attempt.at,
                    Some(error.clone()),
                ));
                next.failing = true;
            }
            Outcome::Renewed => {
                if next.failing {
                    events.push(event(AlertKind::Renewed, attempt.at, None));
                }
                next.failing = false;
            }
        }
    }
    let renewed_now = this_run
        .iter()
        .any(|a| matches!(a.outcome, Outcome::Renewed));
    let today = utc_day(run.now);
    if let Some(not_after) = cert.not_after {
        let near = not_after - run.now < i64::from(days_before_expiry) * DAY;
        if near && !renewed_now && state.expiry_alerted_on.as_deref() != Some(today.as_str()) {
            events.push(event(AlertKind::ExpiryNear, run.now, None));
            next.expiry_alerted_on = Some(today);
        }
    }
    (events, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-02-20T06:00:00Z
    const NOW: i64 = 1_771_567_200;

    fn cert(days_left: i64) -> Cert {
        Cert {
            domain: "chat.example.com".into(),
            names: vec!["chat.example.com".into(), "www.chat.example.com".into()],
            not_after: Some(NOW + days_left * DAY),
        }
    }

    /// The run under test began a minute before NOW.
    const STARTED: i64 = NOW - 60;

    fn run() -> Run<'static> {
        Run {
            id: "this run",
            now: NOW,
            hostname: "web1",
        }
    }

    /// An attempt at `at`: the run's own from STARTED on, an earlier run's before.
    fn attempt(at: i64, outcome: Outcome) -> Attempt {
        let run = if at >= STARTED {
            "this run"
        } else {
            "an earlier run"
        };
        Attempt::new(at, outcome).in_run(run)
    }

    fn failed(at: i64, error: &str) -> Attempt {
        attempt(at, Outcome::Failed(error.into()))
    }

    fn renewed(at: i64) -> Attempt {
        attempt(at, Outcome::Renewed)
    }

    fn kinds(events: &[Alert]) -> Vec<AlertKind> {
        events.iter().map(|e| e.kind).collect()
    }

    #[test]
    fn every_failed_attempt_of_the_run_is_announced() {
        let state = State {
            attempts: vec![
                failed(NOW - 86_400, "yesterday's, announced then"),
                failed(NOW - 50, "first"),
                failed(NOW - 10, "second"),
            ],
            ..State::default()
        };
        let (events, next) = events_for(&cert(25), &state, &run(), 14);
        assert_eq!(
            kinds(&events),
            [AlertKind::RenewalFailed, AlertKind::RenewalFailed]
        );
        assert_eq!(events[0].error.as_deref(), Some("first"));
        assert_eq!(events[0].at, NOW - 50);
        assert_eq!(events[1].error.as_deref(), Some("second"));
        assert!(next.failing);
        // Carried over, this run's marked as announced.
        let mut decided = state.attempts.clone();
        decided[1].announced = true;
        decided[2].announced = true;
        assert_eq!(next.attempts, decided, "attempts carried over");
    }

    #[test]
    fn a_success_after_an_announced_failure_is_renewed() {
        let state = State {
            attempts: vec![failed(NOW - 43_200, "rate limited"), renewed(NOW - 5)],
            failing: true,
            ..State::default()
        };
        let (events, next) = events_for(&cert(89), &state, &run(), 14);
        assert_eq!(kinds(&events), [AlertKind::Renewed]);
        assert_eq!(events[0].at, NOW - 5);
        assert_eq!(events[0].error, None);
        assert_eq!(events[0].days_left, Some(89));
        assert!(!next.failing);
    }

    #[test]
    fn failure_then_success_in_one_run_is_both() {
        let state = State {
            attempts: vec![failed(NOW - 30, "timeout"), renewed(NOW - 5)],
            ..State::default()
        };
        let (events, next) = events_for(&cert(89), &state, &run(), 14);
        assert_eq!(
            kinds(&events),
            [AlertKind::RenewalFailed, AlertKind::Renewed]
        );
        assert!(!next.failing);
    }

    #[test]
    fn a_plain_success_says_nothing() {
        let state = State {
            attempts: vec![renewed(NOW - 86_400 * 60), renewed(NOW - 5)],
            ..State::default()
        };
        let (events, next) = events_for(&cert(89), &state, &run(), 14);
        assert!(events.is_empty(), "{events:?}");
        let mut decided = state.clone();
        decided.attempts[1].announced = true;
        assert_eq!(next, decided);
    }

    #[test]
    fn an_earlier_runs_failure_in_the_same_second_is_not_this_runs() {
        // `apply` failed (nothing announced) and `renew` began in the same
        // second: only renew's own failure is told.
        let state = State {
            attempts: vec![
                Attempt::new(NOW - 5, Outcome::Failed("apply's".into())).in_run("apply"),
                failed(NOW - 5, "renew's"),
            ],
            ..State::default()
        };
        let (events, _) = events_for(&cert(60), &state, &run(), 14);
        assert_eq!(kinds(&events), [AlertKind::RenewalFailed]);
        assert_eq!(events[0].error.as_deref(), Some("renew's"));
    }

    #[test]
    fn attempts_in_the_same_second_are_each_announced_once() {
        // A failed renew and the recovery in the same second: both told.
        let failure = State {
            attempts: vec![failed(NOW - 5, "refused")],
            ..State::default()
        };
        let (first, mut next) = events_for(&cert(60), &failure, &run(), 14);
        assert_eq!(kinds(&first), [AlertKind::RenewalFailed]);
        next.attempts.push(renewed(NOW - 5));
        let (second, last) = events_for(&cert(60), &next, &run(), 14);
        assert_eq!(kinds(&second), [AlertKind::Renewed]);
        assert!(last.attempts.iter().all(|a| a.announced));
    }

    #[test]
    fn deciding_again_announces_nothing_twice() {
        // The alerts step decides before it delivers and checks after.
        let state = State {
            attempts: vec![failed(NOW - 5, "refused")],
            ..State::default()
        };
        let (events, next) = events_for(&cert(5), &state, &run(), 14);
        assert_eq!(
            kinds(&events),
            [AlertKind::RenewalFailed, AlertKind::ExpiryNear]
        );
        let (again, last) = events_for(&cert(5), &next, &run(), 14);
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(last, next);
    }

    #[test]
    fn a_failure_not_announced_earlier_is_not_followed_by_renewed() {
        // `apply` recorded a failure but sends no events: nobody was told.
        let state = State {
            attempts: vec![failed(NOW - 3600, "from apply"), renewed(NOW - 5)],
            ..State::default()
        };
        let (events, _) = events_for(&cert(89), &state, &run(), 14);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn expiry_near_once_per_utc_day_even_without_an_attempt() {
        let state = State::default();
        let (events, next) = events_for(&cert(10), &state, &run(), 14);
        assert_eq!(kinds(&events), [AlertKind::ExpiryNear]);
        assert_eq!(events[0].at, NOW);
        assert_eq!(events[0].days_left, Some(10));
        assert_eq!(next.expiry_alerted_on.as_deref(), Some("2026-02-20"));

        // The second timer run the same day: nothing.
        let later = Run {
            id: "a later run",
            now: NOW + 43_200,
            ..run()
        };
        let (events, again) = events_for(&cert(10), &next, &later, 14);
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(again, next);

        // The next UTC day: again.
        let tomorrow = Run {
            id: "tomorrow's run",
            now: NOW + 86_400,
            ..run()
        };
        let (events, next) = events_for(&cert(10), &next, &tomorrow, 14);
        assert_eq!(kinds(&events), [AlertKind::ExpiryNear]);
        assert_eq!(events[0].days_left, Some(9));
        assert_eq!(next.expiry_alerted_on.as_deref(), Some("2026-02-21"));
    }

    #[test]
    fn expiry_near_is_strictly_fewer_days_than_the_setting() {
        let exactly = Cert {
            not_after: Some(NOW + 14 * DAY),
            ..cert(0)
        };
        assert!(
            events_for(&exactly, &State::default(), &run(), 14)
                .0
                .is_empty()
        );
        let just_under = Cert {
            not_after: Some(NOW + 14 * DAY - 1),
            ..cert(0)
        };
        let (events, _) = events_for(&just_under, &State::default(), &run(), 14);
        assert_eq!(kinds(&events), [AlertKind::ExpiryNear]);
        assert_eq!(events[0].days_left, Some(13));
        let expired = cert(-2);
        let (events, _) = events_for(&expired, &State::default(), &run(), 14);
        assert_eq!(events[0].days_left, Some(-2));
    }

    #[test]
    fn a_failed_renewal_near_expiry_sends_both() {
        let state = State {
            attempts: vec![failed(NOW - 20, "dns")],
            ..State::default()
        };
        let (events, next) = events_for(&cert(5), &state, &run(), 14);
        assert_eq!(
            kinds(&events),
            [AlertKind::RenewalFailed, AlertKind::ExpiryNear]
        );
        assert_eq!(events[1].error, None);
        assert!(next.failing);
    }

    #[test]
    fn no_expiry_near_after_a_successful_renewal() {
        // The new certificate: not near.
        let state = State {
            attempts: vec![renewed(NOW - 5)],
            ..State::default()
        };
        assert!(events_for(&cert(89), &state, &run(), 14).0.is_empty());
        // Even when the caller passed the old expiry, a success this run
        // is not followed by an alert.
        assert!(events_for(&cert(3), &state, &run(), 14).0.is_empty());
    }

    #[test]
    fn no_certificate_no_expiry_but_failures_still_go_out() {
        let none = Cert {
            not_after: None,
            ..cert(0)
        };
        let state = State {
            attempts: vec![failed(NOW - 5, "first issuance")],
            ..State::default()
        };
        let (events, _) = events_for(&none, &state, &run(), 14);
        assert_eq!(kinds(&events), [AlertKind::RenewalFailed]);
        assert_eq!(events[0].not_after, None);
        assert_eq!(events[0].days_left, None);
    }

    #[test]
    fn the_json_has_the_documented_fields() -> anyhow::Result<()> {
        let state = State {
            attempts: vec![failed(NOW - 5, "rate limited")],
            ..State::default()
        };
        let (events, _) = events_for(&cert(9), &state, &run(), 14);
        let json: serde_json::Value = serde_json::from_str(&events[0].to_json())?;
        assert_eq!(
            json,
            serde_json::json!({
                "event": "renewal_failed",
                "domain": "chat.example.com",
                "names": ["chat.example.com", "www.chat.example.com"],
                "not_after": "2026-03-01T06:00:00Z",
                "days_left": 9,
                "error": "rate limited",
                "host": "web1",
                "at": "2026-02-20T05:59:55Z"
            })
        );
        let json: serde_json::Value = serde_json::from_str(&events[1].to_json())?;
        assert_eq!(json["event"], "expiry_near");
        assert!(json.get("error").is_none(), "{json}");
        let none = Cert {
            not_after: None,
            ..cert(0)
        };
        let (events, _) = events_for(&none, &state, &run(), 14);
        let json: serde_json::Value = serde_json::from_str(&events[0].to_json())?;
        assert_eq!(json["not_after"], serde_json::Value::Null);
        Ok(())
    }

    #[test]
    fn rfc3339_formats_and_clamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(NOW), "2026-02-20T06:00:00Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MIN), "0000-01-01T00:00:00Z");
        assert_eq!(utc_day(NOW + 18 * 3600 - 1), "2026-02-20");
        assert_eq!(utc_day(NOW + 18 * 3600), "2026-02-21");
    }
}
