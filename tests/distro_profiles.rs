//! Distro profiles against real os-release files: which profile each
//! distribution gets, what unsupported ones are told, how unknown derivatives
//! are matched, and how the `--data-dir` override and profile validation behave.
//!
//! The files under tests/fixtures/os-release/ are verbatim copies of what the
//! distributions ship in /usr/lib/os-release (or /etc/os-release).

use edgeup::assets::Assets;
use edgeup::distro::{self, Distro};
use edgeup::facts::os_release::OsRelease;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/os-release")
        .join(name)
}

fn embedded() -> Vec<Distro> {
    distro::load_all(&Assets::new(None)).expect("embedded profiles load")
}

fn profile<'a>(profiles: &'a [Distro], name: &str) -> &'a Distro {
    profiles
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no profile named {name}"))
}

/// An os-release written to a temporary file (kept alive by the returned dir).
fn os_release_from(text: &str) -> (tempfile::TempDir, OsRelease) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("os-release");
    fs::write(&path, text).unwrap();
    let os = OsRelease::from_file(&path).unwrap();
    (dir, os)
}

/// A `--data-dir` holding `distros/<name>` files with the given contents.
fn data_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("distros")).unwrap();
    for (name, text) in files {
        fs::write(dir.path().join("distros").join(name), text).unwrap();
    }
    dir
}

fn embedded_text(name: &str) -> String {
    Assets::new(None)
        .get(&format!("distros/{name}"))
        .unwrap()
        .into_owned()
}

/// fixture file, expected ID, VERSION_ID, profile, family.
const SUPPORTED: &[(&str, &str, &str, &str, &str)] = &[
    ("debian-11", "debian", "11", "debian", "debian"),
    ("debian-12", "debian", "12", "debian", "debian"),
    ("debian-13", "debian", "13", "debian", "debian"),
    ("ubuntu-22.04", "ubuntu", "22.04", "debian", "debian"),
    ("ubuntu-24.04", "ubuntu", "24.04", "debian", "debian"),
    ("raspbian-12", "raspbian", "12", "debian", "debian"),
    ("linuxmint-21", "linuxmint", "21.3", "debian", "debian"),
    ("linuxmint-22", "linuxmint", "22", "debian", "debian"),
    ("pop-22.04", "pop", "22.04", "debian", "debian"),
    ("rhel-9", "rhel", "9.6", "rhel", "rhel"),
    ("rocky-9", "rocky", "9.3", "rhel", "rhel"),
    ("almalinux-9", "almalinux", "9.6", "rhel", "rhel"),
    ("centos-stream-9", "centos", "9", "rhel", "rhel"),
    ("oraclelinux-9", "ol", "9.6", "rhel", "rhel"),
    ("fedora-42", "fedora", "42", "fedora", "rhel"),
    ("amzn-2023", "amzn", "2023", "amzn", "rhel"),
];

/// fixture file, expected ID, PRETTY_NAME.
const UNSUPPORTED: &[(&str, &str, &str)] = &[
    ("arch", "arch", "Arch Linux"),
    (
        "opensuse-tumbleweed",
        "opensuse-tumbleweed",
        "openSUSE Tumbleweed",
    ),
    ("opensuse-leap-15.6", "opensuse-leap", "openSUSE Leap 15.6"),
    ("alpine-3.23", "alpine", "Alpine Linux v3.23"),
];

#[test]
fn every_supported_fixture_gets_its_profile() {
    let profiles = embedded();
    for (file, id, version_id, name, family) in SUPPORTED {
        let os = OsRelease::from_file(&fixture(file)).unwrap();
        assert_eq!(os.id, *id, "{file}: ID");
        assert_eq!(os.version_id, *version_id, "{file}: VERSION_ID");
        assert!(!os.pretty_name.is_empty(), "{file}: PRETTY_NAME");
        let chosen =
            distro::select(&profiles, &os).unwrap_or_else(|e| panic!("{file}: no profile: {e:#}"));
        assert_eq!(chosen.name, *name, "{file}: profile");
        assert_eq!(chosen.family, *family, "{file}: family");
    }
}

#[test]
fn every_fixture_file_is_in_a_table() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/os-release");
    let mut listed: Vec<&str> = SUPPORTED.iter().map(|row| row.0).collect();
    listed.extend(UNSUPPORTED.iter().map(|row| row.0));
    let mut missing = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !listed.contains(&name.as_str()) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "fixtures without expectations: {missing:?}"
    );
    assert!(SUPPORTED.len() >= 14);
}

#[test]
fn parsing_keeps_id_like_order_and_strips_quotes() {
    let rocky = OsRelease::from_file(&fixture("rocky-9")).unwrap();
    assert_eq!(rocky.id_like, ["rhel", "centos", "fedora"]);
    assert_eq!(rocky.pretty_name, "Rocky Linux 9.3 (Blue Onyx)");

    let mint = OsRelease::from_file(&fixture("linuxmint-22")).unwrap();
    assert_eq!(mint.id_like, ["ubuntu", "debian"]);

    let debian = OsRelease::from_file(&fixture("debian-12")).unwrap();
    assert!(debian.id_like.is_empty());
    assert_eq!(debian.pretty_name, "Debian GNU/Linux 12 (bookworm)");

    // Tumbleweed ships a commented-out `# VERSION=` line: it must not leak in.
    let tw = OsRelease::from_file(&fixture("opensuse-tumbleweed")).unwrap();
    assert_eq!(tw.id, "opensuse-tumbleweed");
    assert_eq!(tw.id_like, ["opensuse", "suse"]);
    assert_eq!(tw.version_id, "20250910");
}

#[test]
fn unsupported_distributions_are_refused_naming_the_supported_families() {
    let profiles = embedded();
    for (file, id, pretty) in UNSUPPORTED {
        let os = OsRelease::from_file(&fixture(file)).unwrap();
        assert_eq!(os.id, *id, "{file}: ID");
        let err = distro::select(&profiles, &os).expect_err(file);
        let msg = format!("{err:#}");
        assert!(msg.contains(pretty), "{file}: {msg}");
        assert!(msg.contains(&format!("ID={id}")), "{file}: {msg}");
        assert!(msg.contains("the debian family"), "{file}: {msg}");
        assert!(msg.contains("the rhel family"), "{file}: {msg}");
        for known in ["ubuntu", "rocky", "almalinux", "fedora", "amzn"] {
            assert!(msg.contains(known), "{file}: {known} missing from {msg}");
        }
    }
    let tw = OsRelease::from_file(&fixture("opensuse-tumbleweed")).unwrap();
    let msg = format!("{:#}", distro::select(&profiles, &tw).unwrap_err());
    assert!(msg.contains("ID_LIKE=opensuse suse"), "{msg}");
}

#[test]
fn unknown_rhel_rebuild_matches_through_id_like() {
    let (_dir, os) = os_release_from(
        "NAME=\"My Rocky\"\nID=myrocky\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\n\
         PRETTY_NAME=\"My Rocky 9.4\"\n",
    );
    let chosen = distro::select(&embedded(), &os).unwrap();
    assert_eq!(chosen.name, "rhel");
    assert_eq!(chosen.family, "rhel");
}

#[test]
fn unknown_fedora_derivative_gets_fedora_not_amazon_linux() {
    let (_dir, os) = os_release_from(
        "NAME=\"Ultramarine Linux\"\nID=ultramarine\nID_LIKE=fedora\nVERSION_ID=41\n",
    );
    assert_eq!(distro::select(&embedded(), &os).unwrap().name, "fedora");
}

#[test]
fn id_like_profile_listing_the_id_wins_over_one_listing_it_as_like() {
    // amzn's os-release says ID_LIKE=fedora, so someone may well add
    // `like: [fedora]` to amzn.yaml. amzn sorts before fedora; an unknown Fedora
    // derivative must still get the fedora profile.
    let amzn = embedded_text("amzn.yaml").replace("like: []", "like: [fedora]");
    assert!(amzn.contains("like: [fedora]"));
    let dir = data_dir(&[("amzn.yaml", &amzn)]);
    let profiles = distro::load_all(&Assets::new(Some(dir.path().to_path_buf()))).unwrap();
    assert_eq!(profile(&profiles, "amzn").like, ["fedora"]);
    let (_os_dir, os) = os_release_from("ID=nobara\nID_LIKE=\"fedora\"\n");
    assert_eq!(distro::select(&profiles, &os).unwrap().name, "fedora");
}

#[test]
fn later_id_like_entries_are_tried_when_the_first_matches_nothing() {
    let (_dir, os) = os_release_from("ID=neon\nID_LIKE=\"kde ubuntu debian\"\n");
    assert_eq!(distro::select(&embedded(), &os).unwrap().name, "debian");
}

#[test]
fn ids_are_matched_case_insensitively_and_single_quotes_are_stripped() {
    let (_dir, os) = os_release_from("ID='Debian'\nPRETTY_NAME='Debian 12'\n");
    assert_eq!(os.id, "debian");
    assert_eq!(os.pretty_name, "Debian 12");
    assert_eq!(distro::select(&embedded(), &os).unwrap().name, "debian");
}

#[test]
fn missing_id_defaults_to_linux_and_is_refused() {
    let (_dir, os) = os_release_from("NAME=\"Homebrew OS\"\n");
    assert_eq!(os.id, "linux");
    let msg = format!("{:#}", distro::select(&embedded(), &os).unwrap_err());
    assert!(msg.contains("'linux'"), "{msg}");
    assert!(msg.contains("the debian family"), "{msg}");
}

#[test]
fn override_dir_replaces_the_embedded_profile() {
    let debian = embedded_text("debian.yaml")
        .replace("certs_dir: /etc/haproxy/certs", "certs_dir: /srv/tls")
        .replace(
            "ids: [debian, ubuntu, raspbian, linuxmint, pop]",
            "ids: [debian, ubuntu, raspbian, linuxmint, pop, kali]",
        );
    let dir = data_dir(&[("debian.yaml", &debian)]);
    let profiles = distro::load_all(&Assets::new(Some(dir.path().to_path_buf()))).unwrap();
    assert_eq!(profiles.len(), embedded().len(), "replaced, not added");
    let d = profile(&profiles, "debian");
    assert_eq!(d.paths.certs_dir, "/srv/tls");
    assert!(d.ids.iter().any(|id| id == "kali"));
    // The profiles not overridden stay embedded.
    assert_eq!(profile(&profiles, "rhel"), profile(&embedded(), "rhel"));

    let os = OsRelease::from_file(&fixture("debian-12")).unwrap();
    assert_eq!(
        distro::select(&profiles, &os).unwrap().paths.certs_dir,
        "/srv/tls"
    );
}

/// A profile for a distro edgeup does not ship, served by a package manager
/// it knows (apt or dnf; any other is refused: the next test).
const ALPINE: &str = r#"
name: alpine
family: alpine
ids: [alpine]
package_manager: apt
packages: [haproxy, certbot, openssl]
haproxy_user: haproxy
haproxy_group: haproxy
paths:
  haproxy_config: /etc/haproxy/haproxy.cfg
  certs_dir: /etc/haproxy/certs
  admin_socket: /var/lib/haproxy/stats
  chroot: /var/lib/haproxy
  certbot_dir: /etc/letsencrypt
units:
  haproxy: haproxy
  certbot_timer: none
"#;

#[test]
fn override_dir_can_add_a_profile() {
    let dir = data_dir(&[("alpine.yaml", ALPINE)]);
    let profiles = distro::load_all(&Assets::new(Some(dir.path().to_path_buf()))).unwrap();
    assert_eq!(profiles.len(), embedded().len() + 1);
    let added = profile(&profiles, "alpine");
    assert!(added.like.is_empty() && added.repo_packages.is_empty() && added.notes.is_empty());
    assert!(
        added.certbot_available,
        "certbot_available defaults to true"
    );
    let os = OsRelease::from_file(&fixture("alpine-3.23")).unwrap();
    assert_eq!(distro::select(&profiles, &os).unwrap().name, "alpine");
}

#[test]
fn a_package_manager_edgeup_cannot_drive_is_refused_naming_the_file() {
    let apk = ALPINE.replace("package_manager: apt", "package_manager: apk");
    let dir = data_dir(&[("alpine.yaml", &apk)]);
    let err = distro::load_all(&Assets::new(Some(dir.path().to_path_buf()))).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("distros/alpine.yaml"), "{msg}");
    assert!(
        msg.contains("apk") && msg.contains("apt") && msg.contains("dnf"),
        "{msg}"
    );
}

#[test]
fn override_dir_without_distros_folder_uses_the_embedded_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = distro::load_all(&Assets::new(Some(dir.path().to_path_buf()))).unwrap();
    assert_eq!(profiles, embedded());
}

#[test]
fn unknown_key_is_rejected_naming_the_file() {
    let debian = format!("{}firewall: ufw\n", embedded_text("debian.yaml"));
    let dir = data_dir(&[("debian.yaml", &debian)]);
    let err = distro::load_all(&Assets::new(Some(dir.path().to_path_buf()))).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("distros/debian.yaml"), "{msg}");
    assert!(msg.contains("firewall"), "{msg}");
}

#[test]
fn unknown_nested_key_is_rejected_naming_the_file() {
    let rhel = embedded_text("rhel.yaml").replace(
        "  certbot_timer: certbot-renew.timer",
        "  certbot_timer: certbot-renew.timer\n  certbot_service: certbot-renew.service",
    );
    let dir = data_dir(&[("rhel.yaml", &rhel)]);
    let err = distro::load_all(&Assets::new(Some(dir.path().to_path_buf()))).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("distros/rhel.yaml"), "{msg}");
    assert!(msg.contains("certbot_service"), "{msg}");
}

#[test]
fn missing_required_field_is_rejected_naming_the_file() {
    let fedora = embedded_text("fedora.yaml").replace("package_manager: dnf\n", "");
    let dir = data_dir(&[("fedora.yaml", &fedora)]);
    let err = distro::load_all(&Assets::new(Some(dir.path().to_path_buf()))).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("distros/fedora.yaml"), "{msg}");
    assert!(msg.contains("package_manager"), "{msg}");
}

// ---- the embedded profiles themselves ----

#[test]
fn embedded_profiles_are_named_after_their_files() {
    let assets = Assets::new(None);
    let files = assets.list("distros").unwrap();
    let profiles = embedded();
    assert_eq!(files.len(), profiles.len());
    for ((file, _), p) in files.iter().zip(&profiles) {
        assert_eq!(*file, format!("distros/{}.yaml", p.name));
    }
    let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["amzn", "debian", "fedora", "rhel"]);
}

#[test]
fn embedded_profiles_start_with_a_comment() {
    for (file, text) in Assets::new(None).list("distros").unwrap() {
        assert!(text.starts_with("# "), "{file} should start with a comment");
    }
}

#[test]
fn no_id_or_like_entry_is_claimed_by_two_profiles() {
    // Otherwise the choice would depend on file-name order.
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    let profiles = embedded();
    for p in &profiles {
        for key in p.ids.iter().chain(&p.like) {
            if let Some(other) = owner.insert(key, &p.name) {
                assert_eq!(
                    other, p.name,
                    "'{key}' is claimed by {other} and {}",
                    p.name
                );
            }
        }
    }
}

#[test]
fn embedded_profiles_are_consistent() {
    for p in embedded() {
        let expected_manager = match p.family.as_str() {
            "debian" => "apt",
            "rhel" => "dnf",
            other => panic!("{}: unknown family {other}", p.name),
        };
        assert_eq!(p.package_manager.as_str(), expected_manager, "{}", p.name);
        for name in p.ids.iter().chain(&p.like) {
            assert_eq!(*name, name.to_lowercase(), "{}: ids are lowercase", p.name);
        }
        assert!(p.packages.iter().any(|pkg| pkg == "haproxy"), "{}", p.name);
        assert!(p.packages.iter().any(|pkg| pkg == "openssl"), "{}", p.name);
        if p.packages.iter().any(|pkg| pkg == "certbot") {
            assert!(p.certbot_available, "{}: installs certbot", p.name);
        }
        assert_eq!(p.haproxy_user, "haproxy", "{}", p.name);
        assert_eq!(p.haproxy_group, "haproxy", "{}", p.name);
        assert_eq!(p.paths.haproxy_config, "/etc/haproxy/haproxy.cfg");
        assert_eq!(p.paths.certs_dir, "/etc/haproxy/certs");
        assert_eq!(p.paths.chroot, "/var/lib/haproxy");
        assert_eq!(p.paths.certbot_dir, "/etc/letsencrypt");
        assert_eq!(p.units.haproxy, "haproxy.service");
        for path in [
            &p.paths.haproxy_config,
            &p.paths.certs_dir,
            &p.paths.admin_socket,
            &p.paths.chroot,
            &p.paths.certbot_dir,
        ] {
            assert!(path.starts_with('/'), "{}: {path} is absolute", p.name);
        }
        assert!(!p.notes.is_empty(), "{}: notes", p.name);
    }
}

#[test]
fn family_specifics() {
    let profiles = embedded();

    let debian = profile(&profiles, "debian");
    assert_eq!(debian.paths.admin_socket, "/run/haproxy/admin.sock");
    assert_eq!(debian.units.certbot_timer, "certbot.timer");
    assert!(debian.repo_packages.is_empty());
    assert!(
        debian
            .notes
            .iter()
            .any(|n| n.contains("127.0.0.1:3000:8080"))
    );

    let rhel = profile(&profiles, "rhel");
    assert_eq!(rhel.repo_packages, ["epel-release"]);
    assert!(rhel.certbot_available);
    assert!(rhel.notes.iter().any(|n| n.contains("haproxy_connect_any")));
    assert!(rhel.notes.iter().any(|n| n.contains("codeready-builder")));

    let fedora = profile(&profiles, "fedora");
    assert!(
        fedora.repo_packages.is_empty(),
        "certbot is in Fedora's repos"
    );

    let amzn = profile(&profiles, "amzn");
    assert!(
        amzn.repo_packages.is_empty(),
        "EPEL does not support AL2023"
    );
    assert!(amzn.like.is_empty(), "amzn matches by ID only");

    for p in [rhel, fedora, amzn] {
        assert_eq!(p.paths.admin_socket, "/var/lib/haproxy/stats", "{}", p.name);
        // Fedora's certbot packaging (also EPEL's and AL2023's).
        assert_eq!(p.units.certbot_timer, "certbot-renew.timer", "{}", p.name);
    }
}

// ---- /etc/os-release versus /usr/lib/os-release ----

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn read_falls_back_to_usr_lib_os_release() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "usr/lib/os-release",
        &fs::read_to_string(fixture("fedora-42")).unwrap(),
    );
    let os = OsRelease::read(root.path()).unwrap();
    assert_eq!(os.id, "fedora");
    assert_eq!(os.version_id, "42");
}

#[test]
fn read_prefers_etc_os_release() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "etc/os-release",
        "ID=rocky\nID_LIKE=\"rhel centos fedora\"\n",
    );
    write(root.path(), "usr/lib/os-release", "ID=fedora\n");
    assert_eq!(OsRelease::read(root.path()).unwrap().id, "rocky");
}

#[test]
fn read_follows_the_usual_relative_symlink() {
    // Debian, Fedora, Arch: /etc/os-release -> ../usr/lib/os-release
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "usr/lib/os-release",
        &fs::read_to_string(fixture("debian-13")).unwrap(),
    );
    fs::create_dir_all(root.path().join("etc")).unwrap();
    std::os::unix::fs::symlink("../usr/lib/os-release", root.path().join("etc/os-release"))
        .unwrap();
    let os = OsRelease::read(root.path()).unwrap();
    assert_eq!((os.id.as_str(), os.version_id.as_str()), ("debian", "13"));
}

#[test]
fn read_without_any_os_release_names_the_path() {
    let root = tempfile::tempdir().unwrap();
    let msg = format!("{:#}", OsRelease::read(root.path()).unwrap_err());
    assert!(msg.contains("os-release"), "{msg}");
    assert!(msg.contains("identify the distribution"), "{msg}");
}

/// RHEL and Oracle Linux get EPEL their own way; the rebuilds use epel-release.
#[test]
fn epel_comes_the_right_way_for_each_el_distro() {
    let assets = edgeup::assets::Assets::new(None);
    let profiles = edgeup::distro::load_all(&assets).expect("profiles");
    let repo = |fixture: &str| {
        let os = edgeup::facts::os_release::OsRelease::from_file(std::path::Path::new(&format!(
            "tests/fixtures/os-release/{fixture}"
        )))
        .expect("fixture");
        edgeup::distro::select(&profiles, &os)
            .expect("supported")
            .repo_packages
    };
    assert_eq!(
        repo("rhel-9"),
        ["epel-release=https://dl.fedoraproject.org/pub/epel/epel-release-latest-9.noarch.rpm"]
    );
    assert_eq!(repo("oraclelinux-9"), ["oracle-epel-release-el9"]);
    assert_eq!(repo("rocky-9"), ["epel-release"]);
    assert_eq!(repo("almalinux-9"), ["epel-release"]);
    assert_eq!(repo("centos-stream-9"), ["epel-release"]);
    assert!(repo("fedora-42").is_empty());
}
