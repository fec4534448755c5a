//! Every parser of text from outside edgeup (a CA's error, a host's files
//! and command output, PEM files, a remote host's event lines, the user's
//! site file) fed arbitrary strings: none may panic (issue: hardening).
//! Property tests (proptest), bounded to a few hundred cases each.

use edgeup::acme::policy::retry_time_from_message;
use edgeup::facts::os_release::OsRelease;
use edgeup::host::pkgdb::{parse_dpkg_status, parse_rpm_query};
use proptest::prelude::*;

/// Strings rich in what these formats care about: separators, quotes,
/// escapes, multi-byte characters, control characters.
fn awkward() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("retry after ".to_string()),
        Just("Retry After 2026-11-27 12:00:00 UTC".to_string()),
        Just("ID=\"".to_string()),
        Just("='\\\"".to_string()),
        Just("\nPackage: haproxy\nStatus: install ok installed\nVersion: ".to_string()),
        Just("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_string()),
        Just("-----BEGIN EC PRIVATE KEY-----\nMIIB\n-----END EC PRIVATE KEY-----\n".to_string()),
        Just("sites:\n  - domain: a\n".to_string()),
        Just("{\"event\":\"step\",\"status\":\"failed\"}".to_string()),
        Just("İ€😀\u{0}\u{1b}[2J\t\r".to_string()),
        "\\PC{0,12}",
        "[ -~]{0,12}",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|parts| parts.concat())
}

fn wanted() -> Vec<String> {
    ["haproxy", "certbot", "openssl"].map(String::from).to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn ca_error_messages(text in awkward(), now in any::<i32>()) {
        let _ = retry_time_from_message(&text, i64::from(now));
    }

    #[test]
    fn os_release_files(text in awkward()) {
        let os = OsRelease::parse(&text);
        prop_assert!(!os.id.is_empty());
    }

    #[test]
    fn package_databases(text in awkward()) {
        let _ = parse_dpkg_status(&text, &wanted());
        let _ = parse_rpm_query(&text, &wanted());
    }

    #[test]
    fn pem_files(text in awkward()) {
        if let Ok(bundle) = edgeup::pki::parse_bundle(text.as_bytes()) {
            let _ = bundle.key_matches();
        }
    }

    #[test]
    fn haproxy_versions(text in awkward()) {
        let _ = edgeup::render::major_minor(&text);
    }

    #[test]
    fn remote_event_lines(text in awkward()) {
        // As fleet reads a host's line: decoded, then shown.
        let line = edgeup::report::Line::decode(&text);
        let _ = edgeup::fleet::report::line_for("web1", &line.event);
    }

    #[test]
    fn site_files_and_their_edits(text in awkward(), domain in "[a-z.]{0,12}") {
        let _ = edgeup::site::Config::from_text(&text);
        let _ = edgeup::site::edit::remove_site(&text, &domain);
        let _ = edgeup::site::edit::add_site(&text, "domain: b.example.com\nbackends: [\"127.0.0.1:1\"]\n");
    }
}
