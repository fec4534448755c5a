//! `edgeup init` in a real pseudo-terminal (tests/common/tmux.rs): the test
//! types its answers and reads the screen, as a person would.

use edgeup::site::RawSite;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[path = "common/tmux.rs"]
mod tmux;

use tmux::{EXIT_MARK, Tmux};

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_edgeup")
}

/// After the last answer: the plan, then either the exit or (on a host
/// where apply could run) the apply question, answered no.
fn finish_without_applying(t: &Tmux) -> i32 {
    if t.wait_any(&[EXIT_MARK, "Apply these"]) == 1 {
        t.key("n");
    }
    t.exit_code()
}

fn load(path: &Path) -> RawSite {
    let text = std::fs::read_to_string(path).expect("the site file");
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn init_asks_everything_reasks_an_invalid_answer_and_rerun_edits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site_file = dir.path().join("site.yaml");

    // First run, colours allowed; a relative -f path.
    let t = Tmux::start(
        "first",
        dir.path(),
        &format!("env -u NO_COLOR {} init -f site.yaml; code=$?", binary()),
    );
    t.wait_for("? Domain name of the site");
    t.line("https://chat.example.com");
    t.wait_for(
        "✘ domain: \"https://chat.example.com\" includes a URL scheme; drop the scheme and write only the name: chat.example.com",
    );
    t.line("chat.example.com");
    t.wait_for("? Contact email");
    t.line("ops@your-company.com");
    t.wait_for("? Address of the app");
    t.line("127.0.0.1:1");
    t.wait_for("warning: nothing answers on 127.0.0.1:1 yet");
    t.wait_for("? Routing");
    t.key("Enter"); // subdomain (highlighted)
    t.wait_for("? Certificate");
    t.key("Up"); // from production (the default) to staging
    t.key("Enter");
    t.wait_for("? ACME client");
    t.key("Enter"); // builtin
    t.wait_for("? Challenge");
    t.key("Enter"); // http-01
    t.wait_for("? Firewall");
    t.key("Enter"); // auto
    t.wait_for("HSTS makes browsers use only HTTPS for chat.example.com");
    t.wait_for("? Send HSTS");
    t.key("n");
    t.wait_for("? Be alerted when a renewal fails");
    t.key("n");
    let code = finish_without_applying(&t);
    let screen = t.screen(false);
    assert_eq!(code, 0, "{screen}");
    // (The refusal was seen above; dialoguer clears it once the answer is accepted.)
    for expected in [
        "✔ Domain name of the site (its DNS record points to this host), e.g. chat.example.com · chat.example.com",
        "wrote ",
        "edgeup plan: playbook open-webui",
        "recap: ",
    ] {
        assert!(screen.contains(expected), "missing {expected:?}:\n{screen}");
    }
    assert!(
        t.screen(true).contains("\x1b["),
        "a terminal without NO_COLOR gets colour"
    );
    drop(t);

    let mode = std::fs::metadata(&site_file)
        .expect("site file written")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let site = load(&site_file);
    assert_eq!(site.domain, "chat.example.com");
    assert_eq!(site.email.as_deref(), Some("ops@your-company.com"));
    assert_eq!(site.backends, ["127.0.0.1:1"]);
    assert_eq!(site.routing, "subdomain");
    assert_eq!(site.acme.directory, "letsencrypt-staging");
    assert_eq!(site.acme.client, "builtin");
    assert_eq!(site.firewall, "auto");
    assert_eq!(site.hsts, Some(false));
    assert_eq!(site.acme.challenge, "http-01");
    assert_eq!(site.notify, None);
    let written = std::fs::read(&site_file).expect("read");
    assert!(
        String::from_utf8_lossy(&written).contains("# Public DNS name of the site"),
        "comments in the file"
    );

    // Second run, NO_COLOR: every previous answer is the default; Enter throughout.
    let t = Tmux::start(
        "rerun",
        dir.path(),
        &format!(
            "NO_COLOR=1 {} init -f {}; code=$?",
            binary(),
            site_file.display()
        ),
    );
    t.wait_for("Editing ");
    // One site: the menu starts on editing it.
    t.wait_for("What do you want to do?");
    t.wait_for("> Edit chat.example.com");
    t.key("Enter");
    t.wait_for("Domain name of the site (its DNS record points to this host), e.g. chat.example.com [chat.example.com]:");
    t.key("Enter");
    t.wait_for("[ops@your-company.com]:");
    t.key("Enter");
    t.wait_for("replicas [127.0.0.1:1]:");
    t.key("Enter");
    t.wait_for("Routing:");
    t.wait_for("> subdomain");
    t.key("Enter");
    t.wait_for("Certificate:");
    t.wait_for("> Let's Encrypt staging");
    t.key("Enter");
    t.wait_for("ACME client:");
    t.wait_for("> builtin");
    t.key("Enter");
    t.wait_for("Challenge:");
    t.wait_for("> http-01");
    t.key("Enter");
    t.wait_for("Firewall:");
    t.wait_for("> auto");
    t.key("Enter");
    t.wait_for("Send HSTS (Strict-Transport-Security)? [y/N]");
    t.key("Enter");
    t.wait_for("nears expiry (Let's Encrypt no longer e-mails about it)? [y/N]");
    t.key("Enter");
    let code = finish_without_applying(&t);
    let screen = t.screen(false);
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("already says this; left as it is"),
        "{screen}"
    );
    assert!(
        !t.screen(true).contains("\x1b["),
        "NO_COLOR: no colour or attributes on screen"
    );
    assert_eq!(std::fs::read(&site_file).expect("read"), written);
}

/// A file with two sites, comments in it, as a person keeps it.
const TWO_SITES: &str = "\
# shared by both
email: ops@your-company.com
acme: {directory: letsencrypt-staging}
sites:
  # the chat
  - domain: chat.example.com
    backends: [127.0.0.1:1]   # open webui
  # dashboards
  - domain: grafana.example.com
    backends: [127.0.0.1:2]
firewall: auto
";

#[test]
fn init_menu_removes_one_of_two_sites_after_asking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site_file = dir.path().join("site.yaml");
    std::fs::write(&site_file, TWO_SITES).expect("write");
    std::fs::set_permissions(&site_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let command = format!("NO_COLOR=1 {} init -f site.yaml; code=$?", binary());
    let pick_remove_grafana = |t: &Tmux| {
        t.wait_for("Editing ");
        t.wait_for("What do you want to do?");
        t.wait_for("> Add a site");
        for _ in 0..4 {
            t.key("Down"); // Edit chat, Edit grafana, Remove chat, Remove grafana
        }
        t.wait_for("> Remove grafana.example.com");
        t.key("Enter");
        t.wait_for("Remove grafana.example.com? Its route leaves HAProxy");
        t.wait_for("[y/N]");
    };

    // No (the default): nothing written, no plan.
    let t = Tmux::start("menu-keep", dir.path(), &command);
    pick_remove_grafana(&t);
    t.key("Enter");
    let code = t.exit_code();
    let screen = t.screen(false);
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("Nothing changed"), "{screen}");
    assert!(!screen.contains("edgeup plan:"), "{screen}");
    assert_eq!(
        std::fs::read_to_string(&site_file).expect("read"),
        TWO_SITES
    );
    drop(t);

    // Yes: the entry and its comment go, the rest stays byte for byte.
    let t = Tmux::start("menu-remove", dir.path(), &command);
    pick_remove_grafana(&t);
    t.key("y");
    let code = finish_without_applying(&t);
    let screen = t.screen(false);
    assert_eq!(code, 0, "{screen}");
    for expected in ["wrote ", "edgeup plan: playbook open-webui", "recap: "] {
        assert!(screen.contains(expected), "missing {expected:?}:\n{screen}");
    }
    // The plan is the file's: the site left, not the one removed.
    assert!(
        screen.contains("chat.example.com: Placeholder certificate")
            && !screen.contains("grafana.example.com: Placeholder certificate"),
        "{screen}"
    );
    let text = std::fs::read_to_string(&site_file).expect("read");
    assert_eq!(
        text,
        TWO_SITES.replace(
            "  # dashboards\n  - domain: grafana.example.com\n    backends: [127.0.0.1:2]\n",
            ""
        )
    );
    let mode = std::fs::metadata(&site_file)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn init_piped_to_cat_exits_2_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    // stdin and stderr are the terminal; stdout is a pipe.
    let t = Tmux::start(
        "pipe",
        dir.path(),
        &format!(
            "start=$(date +%s%N); {} init -f site.yaml | cat; code=${{PIPESTATUS[0]}}; \
             echo \"ELAPSED_MS=$(( ($(date +%s%N) - start) / 1000000 ))\"",
            binary()
        ),
    );
    let code = t.exit_code();
    let screen = t.screen(false);
    assert_eq!(code, 2, "{screen}");
    assert!(
        screen.contains("needs a terminal, but stdout is not a terminal"),
        "{screen}"
    );
    assert!(screen.contains("edgeup apply -f site.yaml"), "{screen}");
    let elapsed: u64 = screen
        .lines()
        .find_map(|l| l.strip_prefix("ELAPSED_MS="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::MAX);
    assert!(elapsed < 3000, "took {elapsed} ms");
    assert!(!dir.path().join("site.yaml").exists());
}

#[test]
fn ctrl_c_before_the_last_answer_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Tmux::start(
        "interrupt",
        dir.path(),
        &format!("{} init -f site.yaml; code=$?", binary()),
    );
    t.wait_for("Domain name of the site");
    t.line("chat.example.com");
    t.wait_for("Contact email");
    t.key("C-c");
    let code = t.exit_code();
    let screen = t.screen(false);
    assert_eq!(code, 130, "{screen}");
    assert!(
        screen.contains("edgeup init: interrupted; nothing was written"),
        "{screen}"
    );
    assert!(!dir.path().join("site.yaml").exists());
}

#[test]
fn ctrl_c_in_a_selection_list_shows_the_cursor_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Tmux::start(
        "interrupt-select",
        dir.path(),
        &format!(
            "{} init -f site.yaml; code=$?; tmux display-message -p 'CURSOR=#{{cursor_flag}}'",
            binary()
        ),
    );
    t.wait_for("? Domain name of the site");
    t.line("chat.example.com");
    t.wait_for("? Contact email");
    t.line("");
    t.wait_for("? Address of the app");
    t.line("127.0.0.1:1");
    t.wait_for("? Routing");
    t.key("C-c");
    assert_eq!(t.exit_code(), 130);
    t.wait_for("CURSOR=");
    let screen = t.screen(false);
    assert!(screen.contains("CURSOR=1"), "cursor left hidden:\n{screen}");
    assert!(!dir.path().join("site.yaml").exists());
}

#[test]
fn status_colours_only_without_no_color() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let status = format!(
        "{} status --timeout 2 --connect 127.0.0.1:{port} --domain chat.example.com \
         --email ops@your-company.com --backend 127.0.0.1:3000 --acme-directory off",
        binary()
    );
    let coloured = Tmux::start(
        "status-colour",
        dir.path(),
        &format!("env -u NO_COLOR {status}; code=$?"),
    );
    assert_eq!(coloured.exit_code(), 6);
    assert!(
        coloured.screen(true).contains("\x1b["),
        "{}",
        coloured.screen(true)
    );
    let plain = Tmux::start(
        "status-plain",
        dir.path(),
        &format!("NO_COLOR=1 {status}; code=$?"),
    );
    assert_eq!(plain.exit_code(), 6);
    let screen = plain.screen(true);
    assert!(screen.contains("NOT healthy"), "{screen}");
    assert!(!screen.contains("\x1b["), "{screen}");
}
