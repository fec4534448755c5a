use super::*;
use crate::site::{Eab, RawAcme, RawListen};
use std::path::PathBuf;

fn base() -> RawSite {
    RawSite {
        domain: "chat.example.com".into(),
        email: Some("ops@widgets.dev".into()),
        backends: vec!["127.0.0.1:3000".into()],
        routing: "subdomain".into(),
        firewall: "auto".into(),
        hsts: None,
        acme: RawAcme::default(),
        listen: RawListen::default(),
        ..RawSite::default()
    }
}

fn yaml(text: &str) -> RawSite {
    serde_saphyr::from_str::<RawSite>(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn pebble(s: &mut RawSite) {
    s.acme.directory = "https://127.0.0.1:14000/dir".into();
    s.acme.ca_bundle = Some(PathBuf::from("/etc/edgeup/pebble-ca.pem"));
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn good_configs_have_no_problems() {
    type Case = (&'static str, fn(&mut RawSite));
    let cases: &[Case] = &[
        ("minimal", |_| {}),
        ("path routing", |s| s.routing = "path:/owui/".into()),
        ("deep path routing", |s| {
            s.routing = "path:/a/b.c_d~e-f/".into()
        }),
        ("several backends", |s| {
            s.backends = strs(&["127.0.0.1:3000", "10.0.0.5:8080", "open-webui:8080"]);
        }),
        ("IPv6 backends", |s| {
            s.backends = strs(&["[::1]:3000", "[fd00::5]:8080"]);
        }),
        ("acme off without email", |s| {
            s.acme.directory = "off".into();
            s.email = None;
        }),
        ("acme off keeps ca_bundle and eab", |s| {
            s.acme.directory = "off".into();
            s.acme.ca_bundle = Some(PathBuf::from("/etc/edgeup/ca.pem"));
            s.acme.eab = Some(Eab {
                kid: "kid-1".into(),
                hmac_key: "c2VjcmV0".into(),
            });
        }),
        ("custom Pebble URL with ca_bundle", pebble),
        ("Pebble allows test names and example addresses", |s| {
            pebble(s);
            s.domain = "chat.test".into();
            s.email = Some("admin@example.com".into());
        }),
        ("private CA with EAB", |s| {
            s.acme.directory = "https://acme.zerossl.com/v2/DV90".into();
            s.acme.eab = Some(Eab {
                kid: "f_KID-123".into(),
                hmac_key: "aGVsbG8td29ybGQ_".into(),
            });
        }),
        ("punycode domain", |s| {
            s.domain = "xn--bcher-kva.example.com".into()
        }),
        ("letsencrypt URL written out", |s| {
            s.acme.directory = "https://acme-v02.api.letsencrypt.org/directory".into();
        }),
        ("staging, certbot, rsa", |s| {
            s.acme.directory = "letsencrypt-staging".into();
            s.acme.client = "certbot".into();
            s.acme.key_type = "rsa-2048".into();
        }),
        ("dual-stack listen, custom responder", |s| {
            s.listen.http = strs(&[":80", "[::]:80"]);
            s.listen.https = strs(&[":443", "[::]:443", "192.0.2.7:8443"]);
            s.listen.acme_responder = "[::1]:889".into();
        }),
        (
            "backend on port 80 when HAProxy binds another address",
            |s| {
                s.listen.http = strs(&["192.0.2.7:80"]);
                s.backends = strs(&["127.0.0.1:80"]);
            },
        ),
        ("hsts explicitly off with acme off", |s| {
            s.acme.directory = "off".into();
            s.hsts = Some(false);
        }),
    ];
    for (name, edit) in cases {
        let mut site = base();
        edit(&mut site);
        let problems = validate(&site);
        assert!(problems.is_empty(), "{name}: {problems:#?}");
    }
}

#[test]
fn each_bad_value_names_its_field() {
    // (edit, expected field, text the message must contain)
    type Case = (fn(&mut RawSite), &'static str, &'static str);
    let cases: &[Case] = &[
        // domain
        (|s| s.domain = "localhost".into(), "domain", "localhost"),
        (|s| s.domain = String::new(), "domain", "domain is empty"),
        (
            |s| s.domain = "https://chat.example.com".into(),
            "domain",
            "https://chat.example.com",
        ),
        (
            |s| s.domain = "chat.example.com:443".into(),
            "domain",
            "chat.example.com:443",
        ),
        (
            |s| s.domain = "chat.example.com/owui".into(),
            "domain",
            "chat.example.com/owui",
        ),
        (|s| s.domain = "192.0.2.10".into(), "domain", "192.0.2.10"),
        (|s| s.domain = "2001:db8::1".into(), "domain", "2001:db8::1"),
        (
            |s| s.domain = "[2001:db8::1]".into(),
            "domain",
            "[2001:db8::1]",
        ),
        (
            |s| s.domain = "*.example.com".into(),
            "domain",
            "*.example.com",
        ),
        (
            |s| s.domain = "chat.example.com.".into(),
            "domain",
            "chat.example.com.",
        ),
        (
            |s| s.domain = "Chat.Example.com".into(),
            "domain",
            "chat.example.com",
        ),
        (
            |s| s.domain = "bücher.example.com".into(),
            "domain",
            "bücher.example.com",
        ),
        (
            |s| s.domain = "-chat.example.com".into(),
            "domain",
            "-chat.example.com",
        ),
        (
            |s| s.domain = "chat..example.com".into(),
            "domain",
            "chat..example.com",
        ),
        (
            |s| s.domain = "chat_1.example.com".into(),
            "domain",
            "chat_1.example.com",
        ),
        (
            |s| s.domain = format!("{}.example.com", "a".repeat(64)),
            "domain",
            "aaaa",
        ),
        (|s| s.domain = "chat.123".into(), "domain", "chat.123"),
        (|s| s.domain = "chat.local".into(), "domain", "chat.local"),
        (
            |s| s.domain = "chat example.com".into(),
            "domain",
            "chat example.com",
        ),
        // email
        (|s| s.email = None, "email", "email is missing"),
        (|s| s.email = Some(" ".into()), "email", "email is missing"),
        (|s| s.email = Some("ops".into()), "email", "ops"),
        (
            |s| s.email = Some("ops@localhost".into()),
            "email",
            "ops@localhost",
        ),
        (
            |s| s.email = Some("ops@mail.test".into()),
            "email",
            "Let's Encrypt",
        ),
        (
            |s| s.email = Some("mailto:ops@widgets.dev".into()),
            "email",
            "mailto:",
        ),
        (
            |s| s.email = Some("a@b@widgets.dev".into()),
            "email",
            "a@b@widgets.dev",
        ),
        (
            |s| s.email = Some("a@widgets.dev,b@widgets.dev".into()),
            "email",
            "b@widgets.dev",
        ),
        (
            |s| {
                s.acme.directory = "off".into();
                s.email = Some("not-an-address".into())
            },
            "email",
            "not-an-address",
        ),
        // backends
        (|s| s.backends.clear(), "backends", "backends is empty"),
        (
            |s| s.backends = strs(&["http://127.0.0.1:3000"]),
            "backends[0]",
            "http://127.0.0.1:3000",
        ),
        (
            |s| s.backends = strs(&["https://app.lan"]),
            "backends[0]",
            "plain-HTTP",
        ),
        (
            |s| s.backends = strs(&["127.0.0.1"]),
            "backends[0]",
            "127.0.0.1",
        ),
        (
            |s| s.backends = strs(&["127.0.0.1:0"]),
            "backends[0]",
            "127.0.0.1:0",
        ),
        (
            |s| s.backends = strs(&["127.0.0.1:70000"]),
            "backends[0]",
            "127.0.0.1:70000",
        ),
        (
            |s| s.backends = strs(&["127.0.0.1:http"]),
            "backends[0]",
            "127.0.0.1:http",
        ),
        (
            |s| s.backends = strs(&["127.0.0.1:3000/api"]),
            "backends[0]",
            "127.0.0.1:3000/api",
        ),
        (
            |s| s.backends = strs(&["::1:3000"]),
            "backends[0]",
            "::1:3000",
        ),
        (|s| s.backends = strs(&["[::1]"]), "backends[0]", "[::1]"),
        (
            |s| s.backends = strs(&["[app]:3000"]),
            "backends[0]",
            "[app]:3000",
        ),
        (
            |s| s.backends = strs(&["300.1.1.1:80"]),
            "backends[0]",
            "300.1.1.1:80",
        ),
        (
            |s| s.backends = strs(&["0.0.0.0:3000"]),
            "backends[0]",
            "0.0.0.0:3000",
        ),
        (
            |s| s.backends = strs(&["bad host:3000"]),
            "backends[0]",
            "bad host:3000",
        ),
        (
            |s| s.backends = strs(&["127.0.0.1:3000", "10.0.0.2:3000", "127.0.0.1:3000"]),
            "backends[2]",
            "repeats backends[0]",
        ),
        (
            |s| s.backends = strs(&["Open-WebUI:8080", "open-webui:8080"]),
            "backends[1]",
            "open-webui:8080",
        ),
        (
            |s| s.backends = strs(&["127.0.0.1:888"]),
            "backends[0]",
            "127.0.0.1:888",
        ),
        (
            |s| s.backends = strs(&["localhost:888"]),
            "backends[0]",
            "localhost:888",
        ),
        (
            |s| s.backends = strs(&["localhost:80"]),
            "backends[0]",
            "localhost:80",
        ),
        (
            |s| s.backends = strs(&["127.0.0.1:443"]),
            "backends[0]",
            "loop",
        ),
        // routing
        (|s| s.routing = "path".into(), "routing", "path"),
        (|s| s.routing = "path:/".into(), "routing", "path:/"),
        (|s| s.routing = "path:owui".into(), "routing", "path:/owui/"),
        (|s| s.routing = "path:/owui".into(), "routing", "path:/owui"),
        (
            |s| s.routing = "path:/o wui/".into(),
            "routing",
            "path:/o wui/",
        ),
        (
            |s| s.routing = "path:/owui//x/".into(),
            "routing",
            "path:/owui//x/",
        ),
        (
            |s| s.routing = "path:/.well-known/".into(),
            "routing",
            "path:/.well-known/",
        ),
        (|s| s.routing = "path:/../".into(), "routing", "path:/../"),
        (|s| s.routing = "/owui/".into(), "routing", "path:/owui/"),
        (|s| s.routing = "Subdomain".into(), "routing", "Subdomain"),
        // firewall, hsts
        (
            |s| s.firewall = "iptables".into(),
            "firewall",
            "use auto, firewalld, ufw or none",
        ),
        (|s| s.firewall = "UFW".into(), "firewall", "lowercase: ufw"),
        (
            |s| {
                s.acme.directory = "off".into();
                s.hsts = Some(true)
            },
            "hsts",
            "true",
        ),
        // acme
        (
            |s| s.acme.directory = "http://127.0.0.1:14000/dir".into(),
            "acme.directory",
            "https://127.0.0.1:14000/dir",
        ),
        (
            |s| s.acme.directory = "staging".into(),
            "acme.directory",
            "letsencrypt-staging",
        ),
        (
            |s| s.acme.directory = "false".into(),
            "acme.directory",
            "write off",
        ),
        (
            |s| s.acme.directory = "https://".into(),
            "acme.directory",
            "https://",
        ),
        (
            |s| s.acme.directory = "https://:14000/dir".into(),
            "acme.directory",
            "https://:14000/dir",
        ),
        (
            |s| s.acme.directory = "https://127.0.0.1:99999/dir".into(),
            "acme.directory",
            "99999",
        ),
        (
            |s| s.acme.directory = "ftp://ca.example.org/dir".into(),
            "acme.directory",
            "ftp://ca.example.org/dir",
        ),
        (
            |s| s.acme.client = "acme.sh".into(),
            "acme.client",
            "acme.sh",
        ),
        (
            |s| s.acme.key_type = "rsa-4096".into(),
            "acme.key_type",
            "rsa-4096",
        ),
        (
            |s| {
                pebble(s);
                s.acme.ca_bundle = Some("pebble.pem".into())
            },
            "acme.ca_bundle",
            "pebble.pem",
        ),
        (
            |s| s.acme.ca_bundle = Some("/etc/ssl/ca.pem".into()),
            "acme.ca_bundle",
            "Let's Encrypt is trusted by default",
        ),
        (
            |s| {
                pebble(s);
                s.acme.eab = Some(Eab {
                    kid: String::new(),
                    hmac_key: "c2VjcmV0".into(),
                })
            },
            "acme.eab.kid",
            "acme.eab.kid is empty",
        ),
        (
            |s| {
                pebble(s);
                s.acme.eab = Some(Eab {
                    kid: "k".into(),
                    hmac_key: "c2VjcmV0Cg==".into(),
                })
            },
            "acme.eab.hmac_key",
            "padding",
        ),
        (
            |s| {
                pebble(s);
                s.acme.eab = Some(Eab {
                    kid: "k".into(),
                    hmac_key: "c2V+jcm/V0".into(),
                })
            },
            "acme.eab.hmac_key",
            "base64url",
        ),
        (
            |s| {
                pebble(s);
                s.acme.eab = Some(Eab {
                    kid: "k".into(),
                    hmac_key: String::new(),
                })
            },
            "acme.eab.hmac_key",
            "is empty",
        ),
        (
            |s| {
                s.acme.eab = Some(Eab {
                    kid: "kid-1".into(),
                    hmac_key: "c2VjcmV0".into(),
                })
            },
            "acme.eab",
            "kid-1",
        ),
        // listen
        (
            |s| s.listen.http.clear(),
            "listen.http",
            "listen.http is empty",
        ),
        (
            |s| s.listen.https.clear(),
            "listen.https",
            "listen.https is empty",
        ),
        (
            |s| s.listen.http = strs(&["80"]),
            "listen.http[0]",
            "\":80\"",
        ),
        (
            |s| s.listen.http = strs(&["*:80"]),
            "listen.http[0]",
            "*:80",
        ),
        (
            |s| s.listen.http = strs(&["localhost:80"]),
            "listen.http[0]",
            "localhost:80",
        ),
        (
            |s| s.listen.https = strs(&[":99999"]),
            "listen.https[0]",
            ":99999",
        ),
        (
            |s| s.listen.https = strs(&["[::1:443"]),
            "listen.https[0]",
            "[::1:443",
        ),
        (
            |s| s.listen.http = strs(&[":80", ":80"]),
            "listen.http[1]",
            "listen.http[0]",
        ),
        (
            |s| s.listen.https = strs(&[":443", "0.0.0.0:443"]),
            "listen.https[1]",
            "0.0.0.0:443",
        ),
        (
            |s| s.listen.https = strs(&["127.0.0.1:80"]),
            "listen.https[0]",
            "both HTTP and HTTPS",
        ),
        (
            |s| s.listen.acme_responder = ":888".into(),
            "listen.acme_responder",
            ":888",
        ),
        (
            |s| s.listen.acme_responder = "0.0.0.0:888".into(),
            "listen.acme_responder",
            "0.0.0.0:888",
        ),
        (
            |s| s.listen.acme_responder = "192.0.2.1:888".into(),
            "listen.acme_responder",
            "192.0.2.1:888",
        ),
        (
            |s| s.listen.acme_responder = "localhost:888".into(),
            "listen.acme_responder",
            "127.0.0.1:888",
        ),
        (
            |s| s.listen.acme_responder = "127.0.0.1:9999".into(),
            "listen.acme_responder",
            "any local user could listen there",
        ),
        (
            |s| s.listen.acme_responder = "127.0.0.1:80".into(),
            "listen.acme_responder",
            "listen.http[0]",
        ),
    ];
    assert!(cases.len() >= 45);
    for (i, (edit, field, needle)) in cases.iter().enumerate() {
        let mut site = base();
        edit(&mut site);
        let problems = validate(&site);
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 1, "case {i} ({field}): {shown:#?}");
        assert_eq!(problems[0].field, *field, "case {i}: {shown:#?}");
        assert!(
            shown[0].contains(needle),
            "case {i}: {:?} does not contain {needle:?}",
            shown[0]
        );
        assert!(!problems[0].fix.is_empty(), "case {i}: no fix");
    }
}

#[test]
fn display_reads_as_one_line() {
    let mut site = base();
    site.domain = "localhost".into();
    let p = &validate(&site)[0];
    assert_eq!(
        p.to_string(),
        "domain: \"localhost\" is not a fully qualified domain name; \
         use a public name such as chat.example.com"
    );
    assert!(!p.to_string().contains('\n'));
}

#[test]
fn hmac_key_is_never_shown() {
    let mut site = base();
    pebble(&mut site);
    site.acme.eab = Some(Eab {
        kid: "k".into(),
        hmac_key: "s3cr3t+key/==".into(),
    });
    let problems = validate(&site);
    assert_eq!(problems.len(), 1);
    let shown = problems[0].to_string();
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert!(!problems[0].value.contains("s3cr3t"));
}

#[test]
fn three_bad_fields_are_all_reported_in_file_order() {
    let site = yaml(
        "domain: localhost\n\
         email: ops@widgets.dev\n\
         backends: [\"http://127.0.0.1:3000\"]\n\
         firewall: iptables\n",
    );
    let fields: Vec<String> = validate(&site).into_iter().map(|p| p.field).collect();
    assert_eq!(fields, ["domain", "backends[0]", "firewall"]);
}

#[test]
fn listen_problems_come_last() {
    let mut site = base();
    site.listen.http = strs(&["80"]);
    site.acme.client = "acme.sh".into();
    site.domain = "localhost".into();
    let fields: Vec<String> = validate(&site).into_iter().map(|p| p.field).collect();
    assert_eq!(fields, ["domain", "acme.client", "listen.http[0]"]);
}

#[test]
fn minimal_yaml_gets_defaults_and_passes() {
    let site =
        yaml("domain: chat.example.com\nemail: ops@widgets.dev\nbackends: [\"127.0.0.1:3000\"]\n");
    assert_eq!(site, base());
    assert!(validate(&site).is_empty());
}

#[test]
fn full_yaml_passes() {
    let site = yaml(
        r#"
domain: chat.example.com
email: ops@widgets.dev
backends:
  - 127.0.0.1:3000
  - "[::1]:3001"
  - open-webui:8080
routing: path:/owui/
firewall: ufw
hsts: true
acme:
  directory: https://127.0.0.1:14000/dir
  ca_bundle: /etc/edgeup/pebble-ca.pem
  client: certbot
  key_type: rsa-2048
  eab:
    kid: kid-1
    hmac_key: aGVsbG8td29ybGQ_
listen:
  http: [":80", "[::]:80"]
  https: [":443", "[::]:443"]
  acme_responder: 127.0.0.1:889
"#,
    );
    assert_eq!(site.backends.len(), 3);
    assert_eq!(site.listen.http, [":80", "[::]:80"]);
    let problems = validate(&site);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn yaml_off_stays_a_string() {
    // YAML 1.1 would read `off` as a boolean; serde-saphyr gives the string.
    let site =
        yaml("domain: chat.example.com\nbackends: [\"127.0.0.1:3000\"]\nacme:\n  directory: off\n");
    assert_eq!(site.acme.directory, "off");
    assert!(validate(&site).is_empty());
}

#[test]
fn unknown_keys_fail_deserialisation_naming_the_key() {
    for (text, key) in [
        (
            "domian: chat.example.com\nbackends: [\"127.0.0.1:3000\"]\n",
            "domian",
        ),
        (
            "domain: chat.example.com\nbackends: [\"127.0.0.1:3000\"]\nacme:\n  dirctory: off\n",
            "dirctory",
        ),
        (
            "domain: chat.example.com\nbackends: [\"127.0.0.1:3000\"]\nlisten:\n  htps: [\":443\"]\n",
            "htps",
        ),
    ] {
        let err = match serde_saphyr::from_str::<RawSite>(text) {
            Ok(site) => panic!("{key} accepted: {site:?}"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(key), "{err}");
    }
}

// ------------------------------------------------------------- many sites

fn config(text: &str) -> (SiteFile, Vec<RawSite>) {
    let file: SiteFile = serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let sites = file.resolve().unwrap_or_else(|p| panic!("{p:?}\n{text}"));
    (file, sites)
}

fn fields(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.field.as_str()).collect()
}

#[test]
fn aliases_and_health_are_checked_like_their_kind() {
    let mut s = base();
    s.aliases = strs(&[
        "www.chat.example.com",
        "chat.example.com",
        "*.example.com",
        "www.chat.example.com",
    ]);
    s.health = Some("health".into());
    let problems = validate(&s);
    assert_eq!(
        fields(&problems),
        ["aliases[1]", "aliases[2]", "aliases[3]", "health"],
        "{problems:#?}"
    );
    assert!(problems[0].reason.contains("is the site's domain"));
    assert!(problems[1].reason.contains("wildcard"));
    assert!(problems[2].reason.contains("repeats aliases[0]"));
    assert_eq!(problems[3].fix, "write health: /health");
    s.aliases = strs(&["www.chat.example.com"]);
    s.health = Some("/api/health?full=1".into());
    assert!(validate(&s).is_empty(), "{:#?}", validate(&s));
}

#[test]
fn a_name_belongs_to_one_site_and_problems_name_the_key_to_edit() {
    let (file, cfg) = config(
        "email: ops@widgets.dev\nacme: {directory: bogus}\nsites:\n\
         \x20 - {domain: a.example.com, backends: [\"127.0.0.1:3000\"]}\n\
         \x20 - {domain: b.example.com, aliases: [a.example.com], backends: [\"127.0.0.1:3001\"], acme: {client: x}}\n\
         \x20 - {domain: b.example.com, backends: [\"nope\"]}\n",
    );
    let problems = validate_config(&cfg, Some(&file)).expect_err("refused");
    assert_eq!(
        fields(&problems),
        [
            "acme.directory",
            "sites[1].acme.client",
            "sites[2].backends[0]",
            "sites[1].aliases[0]",
            "sites[2].domain",
        ],
        "{problems:#?}"
    );
    assert!(
        problems[3]
            .reason
            .contains("is also a name of a.example.com")
    );
    assert!(
        problems[4]
            .reason
            .contains("is also a name of b.example.com")
    );
}

#[test]
fn two_sites_on_one_backend_get_a_warning_not_an_error() {
    let (file, cfg) = config(
        "acme: {directory: \"off\"}\nsites:\n\
         \x20 - {domain: a.example.com, backends: [\"127.0.0.1:3000\"]}\n\
         \x20 - {domain: b.example.com, backends: [\"127.0.0.1:3000\"]}\n",
    );
    let cfg = validate_config(&cfg, Some(&file)).expect("valid");
    let warnings = config_warnings(&cfg);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .contains("a.example.com and b.example.com both send requests to 127.0.0.1:3000")
    );
}

#[test]
fn a_valid_site_parses_into_types_and_writes_back_as_written() {
    let raw = yaml(
        "domain: chat.example.com\nemail: ops@widgets.dev\nbackends: [\"127.0.0.1:3000\", \"[::1]:3001\", \"open-webui:8080\"]\n\
         routing: path:/owui/\nfirewall: ufw\nacme: {directory: letsencrypt-staging, client: certbot, key_type: rsa-2048}\n\
         listen: {http: [\":80\", \"[::]:80\"], https: [\"127.0.0.2:8443\"]}\n",
    );
    let site = parse_site(&raw).expect("valid");
    assert_eq!(site.routing, Routing::Path("/owui/".into()));
    assert_eq!(site.firewall, model::FirewallBackend::Ufw);
    assert_eq!(site.acme.directory, Directory::Staging);
    assert!(site.acme.directory.is_letsencrypt());
    assert_eq!(site.acme.client, model::AcmeClient::Certbot);
    assert_eq!(site.acme.key_type, model::KeyType::Rsa2048);
    assert_eq!(site.backends[1].port, 3001);
    assert!(site.listen.http[0].every && !site.listen.http[1].every);
    assert_eq!(site.https_origin(), "https://chat.example.com:8443");
    assert_eq!(site.url(), "https://chat.example.com:8443/owui/");
    assert_eq!(site.to_raw(), raw);
}

#[test]
fn an_invalid_site_gives_every_problem_and_no_site() {
    let mut raw = base();
    raw.routing = "sideways".into();
    raw.acme.client = "Certbot".into();
    let problems = parse_site(&raw).expect_err("refused");
    assert_eq!(fields(&problems), ["routing", "acme.client"]);
    assert_eq!(problems[1].fix, "write it in lowercase: certbot");
}

#[test]
fn certbot_sites_share_one_trust_store() {
    let (file, sites) = config(
        "email: ops@widgets.dev\nacme: {client: certbot}\nsites:\n\
         \x20 - {domain: a.example.com, backends: [\"127.0.0.1:3000\"]}\n\
         \x20 - {domain: b.example.com, backends: [\"127.0.0.1:3001\"], acme: {directory: \"https://127.0.0.1:14000/dir\", ca_bundle: /etc/edgeup/ca.pem}}\n\
         \x20 - {domain: c.example.com, backends: [\"127.0.0.1:3002\"], acme: {client: builtin, directory: \"https://127.0.0.1:14000/dir\", ca_bundle: /etc/edgeup/ca.pem}}\n",
    );
    let problems = validate_config(&sites, Some(&file)).expect_err("refused");
    assert_eq!(
        fields(&problems),
        ["sites[1].acme.ca_bundle"],
        "{problems:#?}"
    );
    assert!(
        problems[0]
            .reason
            .contains("differs from a.example.com's (none)")
    );
}

#[test]
fn a_ca_bundle_path_must_need_no_quoting_in_a_unit_file() {
    let mut s = base();
    pebble(&mut s);
    s.acme.ca_bundle = Some(PathBuf::from("/etc/edgeup/my ca.pem"));
    assert_eq!(fields(&validate(&s)), ["acme.ca_bundle"]);
    s.acme.ca_bundle = Some(PathBuf::from("/etc/edgeup/ca\n[Service]"));
    assert_eq!(fields(&validate(&s)), ["acme.ca_bundle"]);
}

fn dns01(s: &mut RawSite) {
    pebble(s);
    s.domain = "example.test".into();
    s.acme.challenge = "dns-01".into();
    s.acme.dns = Some(crate::site::raw::RawDns {
        provider: "rfc2136".into(),
        server: Some("127.0.0.1:5353".into()),
        tsig_key_file: Some(PathBuf::from("/etc/edgeup/tsig.key")),
        propagation_timeout: "30s".into(),
        ..Default::default()
    });
}

#[test]
fn dns01_sites_may_have_wildcard_aliases_and_parse_into_settings() {
    let mut s = base();
    dns01(&mut s);
    s.aliases = strs(&["*.example.test"]);
    let site = parse_site(&s).unwrap_or_else(|p| panic!("{p:#?}"));
    let dns = site.acme.dns().expect("dns-01");
    assert_eq!(dns.propagation_timeout, std::time::Duration::from_secs(30));
    assert_eq!(
        dns.provider,
        crate::dns::Provider::Rfc2136 {
            server: "127.0.0.1:5353".parse().expect("address"),
            tsig_key_file: PathBuf::from("/etc/edgeup/tsig.key"),
        }
    );
    assert_eq!(site.names(), strs(&["example.test", "*.example.test"]));
    // Written back, it reads as the same site.
    assert_eq!(parse_site(&site.to_raw()), Ok(site));
}

#[test]
fn wildcards_need_dns01_and_an_exact_domain() {
    let mut s = base();
    s.aliases = strs(&["*.example.com"]);
    let problems = validate(&s);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].field, "aliases[0]");
    assert!(
        problems[0].reason.contains("only dns-01"),
        "{}",
        problems[0]
    );
    assert!(
        problems[0].fix.contains("acme.challenge: dns-01"),
        "{}",
        problems[0]
    );

    let mut s = base();
    dns01(&mut s);
    s.domain = "*.example.test".into();
    let problems = validate(&s);
    assert_eq!(problems[0].field, "domain", "{problems:#?}");
    assert!(
        problems[0].fix.contains("aliases: [\"*.example.test\"]"),
        "{}",
        problems[0]
    );
    // Only a whole leftmost label may be a wildcard.
    s.domain = "example.test".into();
    s.aliases = strs(&["a*.example.test", "*.*.example.test"]);
    let problems = validate(&s);
    assert_eq!(problems.len(), 2, "{problems:#?}");
}

#[test]
fn dns_settings_problems_name_the_key() {
    type Case = (&'static str, fn(&mut RawSite), &'static str);
    let cases: &[Case] = &[
        (
            "unknown challenge",
            |s| s.acme.challenge = "tls-alpn-01".into(),
            "acme.challenge",
        ),
        ("dns-01 without dns", |s| s.acme.dns = None, "acme.dns"),
        (
            "dns with http-01",
            |s| s.acme.challenge = "http-01".into(),
            "acme.dns",
        ),
        (
            "certbot",
            |s| s.acme.client = "certbot".into(),
            "acme.client",
        ),
        (
            "server by name",
            |s| {
                if let Some(d) = &mut s.acme.dns {
                    d.server = Some("ns1.example.test".into());
                }
            },
            "acme.dns.server",
        ),
        (
            "no key file",
            |s| {
                if let Some(d) = &mut s.acme.dns {
                    d.tsig_key_file = None;
                }
            },
            "acme.dns.tsig_key_file",
        ),
        (
            "relative key file",
            |s| {
                if let Some(d) = &mut s.acme.dns {
                    d.tsig_key_file = Some(PathBuf::from("tsig.key"));
                }
            },
            "acme.dns.tsig_key_file",
        ),
        (
            "exec without command",
            |s| {
                if let Some(d) = &mut s.acme.dns {
                    d.provider = "exec".into();
                    d.server = None;
                    d.tsig_key_file = None;
                }
            },
            "acme.dns.command",
        ),
        (
            "exec with a server",
            |s| {
                if let Some(d) = &mut s.acme.dns {
                    d.provider = "exec".into();
                    d.command = Some(PathBuf::from("/usr/local/bin/hook"));
                }
            },
            "acme.dns.server",
        ),
        (
            "unknown provider",
            |s| {
                if let Some(d) = &mut s.acme.dns {
                    d.provider = "cloudflare".into();
                }
            },
            "acme.dns.provider",
        ),
        (
            "zero timeout",
            |s| {
                if let Some(d) = &mut s.acme.dns {
                    d.propagation_timeout = "0s".into();
                }
            },
            "acme.dns.propagation_timeout",
        ),
    ];
    for (name, edit, field) in cases {
        let mut s = base();
        dns01(&mut s);
        edit(&mut s);
        let problems = validate(&s);
        assert_eq!(problems.len(), 1, "{name}: {problems:#?}");
        assert_eq!(problems[0].field, *field, "{name}: {}", problems[0]);
        assert!(!problems[0].fix.is_empty(), "{name}");
    }
}

#[test]
fn notify_is_checked_and_typed() {
    let s = yaml(
        "domain: chat.example.com\nemail: ops@widgets.dev\nbackends: [\"127.0.0.1:3000\"]\n\
         notify:\n  targets:\n    - command: /usr/local/bin/page-me\n    - webhook: https://hooks.example.com/edgeup\n",
    );
    let site = parse_site(&s).unwrap_or_else(|p| panic!("{p:#?}"));
    let notify = site.notify.clone().expect("notify");
    assert_eq!(notify.days_before_expiry, 14);
    assert_eq!(
        notify.targets,
        vec![
            crate::notify::Target::Command(PathBuf::from("/usr/local/bin/page-me")),
            crate::notify::Target::Webhook("https://hooks.example.com/edgeup".into()),
        ]
    );
    for (text, field) in [
        ("notify: {targets: []}", "notify.targets"),
        (
            "notify: {targets: [{command: page-me}]}",
            "notify.targets[0]",
        ),
        (
            "notify: {targets: [{webhook: hooks.example.com}]}",
            "notify.targets[0]",
        ),
        ("notify: {targets: [{}]}", "notify.targets[0]"),
        (
            "notify: {targets: [{command: /bin/true}], days_before_expiry: 0}",
            "notify.days_before_expiry",
        ),
    ] {
        let s = yaml(&format!(
            "domain: chat.example.com\nemail: ops@widgets.dev\nbackends: [\"127.0.0.1:3000\"]\n{text}\n"
        ));
        let problems = validate(&s);
        assert_eq!(problems.len(), 1, "{text}: {problems:#?}");
        assert_eq!(problems[0].field, field, "{text}");
    }
}
