//! Embeds every file under distros/, playbooks/ and templates/ in the binary,
//! so adding a distro profile or a template is a data change, not a code change.

use std::fmt::Write;
use std::path::Path;

fn main() {
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
