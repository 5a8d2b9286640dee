//! Build script of `cohort-worker`: with the `tch` feature, bake libtorch's directory into
//! the binaries as an rpath.
//!
//! Why: torch-sys links `libtorch_cpu.so` & co. dynamically but only passes `-L`, so a
//! `cargo test` or `cargo run` binary would fail at start-up with "libtorch_cpu.so: cannot
//! open shared object file" unless the user exports `LD_LIBRARY_PATH`. With the rpath the
//! binaries, tests and examples of this package just run. (`rustc-link-arg` reaches every
//! binary target of this package; other crates do not link libtorch.)
//!
//! Where the directory comes from, first found wins:
//! 1. `DEP_TCH_LIBTORCH_LIB`: what torch-sys (`links = "tch"`) actually linked against; set
//!    because `torch-sys` is a direct (feature-gated) dependency of this crate;
//! 2. `$LIBTORCH/lib`;
//! 3. the `torch` package of `python3` (the `LIBTORCH_USE_PYTORCH=1` set-up).
//!
//! Without the feature this script does nothing.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if std::env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    match libtorch_lib_dir() {
        Some(dir) => {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        }
        None => println!(
            "cargo:warning=cohort-worker (tch): libtorch's lib directory not found; \
             set LD_LIBRARY_PATH to run the binaries"
        ),
    }
}

fn libtorch_lib_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") {
        return Some(PathBuf::from(dir));
    }
    if let Some(root) = std::env::var_os("LIBTORCH") {
        return Some(PathBuf::from(root).join("lib"));
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    dir.is_dir().then_some(dir)
}
