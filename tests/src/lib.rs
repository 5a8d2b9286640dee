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
