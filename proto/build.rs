//! Compiles `cohort/v1/*.proto` with protox (a protobuf compiler in Rust), so
//! building Cohort needs no system `protoc`, then generates prost messages and
//! tonic clients/servers from the descriptor set. The encoded descriptor set
//! is kept in OUT_DIR too: tests enumerate every RPC from it (so a method
//! added to a .proto is covered by the auth test without editing the test).

use std::path::PathBuf;

use prost::Message;

const PROTOS: &[&str] = &[
    "cohort/v1/collective.proto",
    "cohort/v1/job.proto",
    "cohort/v1/worker.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("cohort_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        // Chunk payloads are `bytes::Bytes`: decoding slices the receive
        // buffer instead of copying, and a received chunk is forwarded as is.
        .bytes(".cohort.v1.Chunk.data")
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;
    Ok(())
}
