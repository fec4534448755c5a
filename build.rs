//! Embeds every file under distros/, playbooks/ and templates/ in the binary,
//! so adding a distro profile or a template is a data change, not a code change.
//! Also sets EDGEUP_VERSION for `--version`: the package version and the git
//! commit (`0.1.0 (git 1a2b3c4d5e6f)`), from env EDGEUP_GIT_COMMIT when set
//! (a build from a tarball), else `git rev-parse --short=12 HEAD`, else
//! `unknown`. Fails only when OUT_DIR cannot be written.

use std::fmt::Write;
use std::path::Path;
use std::process::Command;

/// `git ARGS` in the package directory, its trimmed stdout when it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// The commit this build is of, and the files whose change means another
/// commit (HEAD, the branch it points to, packed refs) for rerun-if-changed.
fn commit() -> String {
    println!("cargo:rerun-if-env-changed=EDGEUP_GIT_COMMIT");
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
    };
    if let Ok(given) = std::env::var("EDGEUP_GIT_COMMIT") {
        let given = given.trim().to_string();
        return if plain(&given) {
            given
        } else {
            "unknown".into()
        };
    }
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name])
            && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(sha) if plain(&sha) => sha,
        _ => "unknown".into(),
    }
}

fn main() {
    println!(
        "cargo:rustc-env=EDGEUP_VERSION={} (git {})",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default(),
        commit()
    );
    let mut entries = String::new();
    for folder in ["distros", "playbooks", "templates"] {
        println!("cargo:rerun-if-changed={folder}");
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .map(|dir| {
                dir.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_file())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        for name in names {
            let rel = format!("{folder}/{name}");
            let abs =
                Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join(&rel);
            let _ = writeln!(
                entries,
                "    ({rel:?}, include_str!({:?})),",
                abs.display().to_string()
            );
        }
    }
    let out = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("embedded.rs");
    let code = format!("const EMBEDDED: &[(&str, &str)] = &[\n{entries}];\n");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("writing {}: {e}", out.display());
    }
}
