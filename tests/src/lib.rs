//! Helpers for Cohort's end-to-end tests: locating the built binaries and the
//! shared fixtures. The tests themselves live in `tests/tests/`.

use std::path::PathBuf;

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits inside the workspace")
        .to_path_buf()
}

/// `../shared` beside the checkout: design brief, fixtures and reference values.
pub fn shared_dir() -> PathBuf {
    workspace_root()
        .parent()
        .expect("the checkout has a parent folder")
        .join("shared")
}

/// A binary of the workspace (`cohort`, `cohort-worker`), next to the running test's
/// `deps/` folder; `cargo test --workspace` builds them.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo test --workspace` (or `cargo build --bins` first)",
        path.display()
    );
    path
}
