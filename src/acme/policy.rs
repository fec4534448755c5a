//! When the CA told us to back off (when a certificate is due is
//! `pki::Verdict::renewal_due`).

use crate::host::{FileAttrs, Host};
use anyhow::Result;

fn backoff_path(state_dir: &str, domain: &str) -> String {
    format!("{state_dir}/acme/{domain}.retry-after")
}

/// Unix time before which no new order may be placed (after a rate limit).
pub fn retry_after(host: &Host, state_dir: &str, domain: &str) -> Result<Option<i64>> {
    Ok(host
        .read_string(&backoff_path(state_dir, domain))?
        .and_then(|s| s.trim().parse().ok()))
}

/// Records a rate limit: no order before `until` (unix seconds).
pub fn record_backoff(host: &Host, state_dir: &str, domain: &str, until: i64) -> Result<()> {
    let attrs = FileAttrs {
        mode: 0o700,
        uid: 0,
        gid: 0,
    };
    host.ensure_dir(&format!("{state_dir}/acme"), &attrs)?;
    host.write_atomic(
        &backoff_path(state_dir, domain),
        until.to_string().as_bytes(),
        &FileAttrs {
            mode: 0o644,
            ..attrs
        },
        None,
    )
}

pub fn clear_backoff(host: &Host, state_dir: &str, domain: &str) -> Result<()> {
    host.remove_file(&backoff_path(state_dir, domain))
}

/// The retry time a CA states in a rate-limit message ("retry after
/// 2026-11-27 12:00:00 UTC" or an RFC 3339 time); one hour when it gives none.
/// Works on characters, never byte offsets: the message is the CA's text.
pub fn retry_time_from_message(message: &str, now: i64) -> i64 {
    const MARK: &str = "retry after ";
    let after = message.char_indices().find_map(|(i, _)| {
        let rest = message.get(i..)?;
        rest.get(..MARK.len())
            .filter(|head| head.eq_ignore_ascii_case(MARK))
            .and_then(|_| rest.get(MARK.len()..))
    });
    let Some(rest) = after else {
        return now + 3600;
    };
    let candidate: Vec<char> = rest.chars().take(25).collect();
    for len in (19..=candidate.len()).rev() {
        let text: String = candidate.iter().take(len).collect();
        let text = text.trim().replace(' ', "T").replace("TUTC", "Z");
        let text = if text.ends_with('Z') || text.contains('+') {
            text
        } else {
            format!("{text}Z")
        };
        if let Ok(t) =
            time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
        {
            return t.unix_timestamp();
        }
    }
    now + 3600
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_from_the_message() {
        let t = retry_time_from_message(
            "too many certificates: retry after 2026-11-27 12:00:00 UTC: see https://x",
            0,
        );
        assert_eq!(t, 1_795_780_800);
        assert_eq!(retry_time_from_message("slow down", 100), 3700);
        // Non-ASCII around the marker and in the time (this used to panic).
        assert_eq!(
            retry_time_from_message("İİİ Retry After 2026-11-27 12:00:00 UTC ü", 0),
            1_795_780_800
        );
        assert_eq!(
            retry_time_from_message("retry after ééééééééééééééééééééééééé", 5),
            3605
        );
        assert_eq!(retry_time_from_message("retry after ", 5), 3605);
    }
}
