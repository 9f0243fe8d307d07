//! The man pages in `man/` and the completions in `completions/` are generated from the clap
//! definitions in `src/cli.rs` and committed. This test regenerates them and fails when the
//! committed files are stale; `UPDATE_GENERATED=1 cargo test --test it generated` rewrites them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use webui_doctor::cli::Cli;

fn files_in(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

fn generate(kind: &str, out: &Path) {
    match kind {
        "man" => clap_mangen::generate_to(Cli::command(), out).unwrap(),
        "completions" => {
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Elvish, Shell::PowerShell] {
                clap_complete::generate_to(shell, &mut Cli::command(), "webui-doctor", out).unwrap();
            }
        }
        _ => unreachable!(),
    }
}

#[test]
fn man_pages_and_completions_are_current() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let update = std::env::var_os("UPDATE_GENERATED").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for kind in ["man", "completions"] {
        let committed = root.join(kind);
        let fresh = tempfile::tempdir().unwrap();
        generate(kind, fresh.path());
        let want = files_in(fresh.path());
        if update {
            let _ = std::fs::remove_dir_all(&committed);
            std::fs::create_dir_all(&committed).unwrap();
            generate(kind, &committed);
            continue;
        }
        let have = files_in(&committed);
        for (name, bytes) in &want {
            if have.get(name) != Some(bytes) {
                stale.push(format!("{kind}/{name}"));
            }
        }
        stale.extend(
            have.keys().filter(|n| !want.contains_key(*n)).map(|n| format!("{kind}/{n} (no longer generated)")),
        );
    }
    assert!(
        stale.is_empty(),
        "generated files are stale: {stale:?}\nrun: UPDATE_GENERATED=1 cargo test --test it generated"
    );
    // Every subcommand has its page, every shell its script.
    let man = files_in(&root.join("man"));
    for page in ["webui-doctor.1", "webui-doctor-sockets.1", "webui-doctor-check.1"] {
        assert!(man.contains_key(page), "man/{page} missing");
    }
    assert_eq!(files_in(&root.join("completions")).len(), 5);
}

#[test]
fn clap_definitions_are_consistent() {
    Cli::command().debug_assert();
}
