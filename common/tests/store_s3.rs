//! The S3 path of `common::store` against a real S3-compatible server on
//! loopback: `moto` in server mode (`pip install 'moto[server]'`).
//!
//! The test starts its own moto server on a free port unless
//! `COHORT_TEST_S3_ENDPOINT` names one that is already running (as `.ci/run`
//! does). Nothing here is mocked: requests are signed SigV4 HTTP calls made by
//! `object_store`'s S3 client.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cohort_common::store::{Store, StoreError};

struct MotoServer {
    endpoint: String,
    child: Option<Child>,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn http(endpoint: &str, request: &str) -> std::io::Result<String> {
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

fn start_moto() -> MotoServer {
    if let Ok(endpoint) = std::env::var("COHORT_TEST_S3_ENDPOINT") {
        return MotoServer {
            endpoint,
            child: None,
        };
    }
    let port = free_port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs (install moto with: pip install 'moto[server]')");
    let server = MotoServer {
        endpoint: format!("http://127.0.0.1:{port}"),
        child: Some(child),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "moto server did not start on port {port}; install it with: pip install 'moto[server]'"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn create_bucket(endpoint: &str, bucket: &str) {
    let host = endpoint.trim_start_matches("http://");
    let response = http(
        endpoint,
        &format!("PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    )
    .expect("create bucket");
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "create bucket: {response}"
    );
}

fn options(endpoint: &str) -> Vec<(String, String)> {
    [
        ("aws_endpoint", endpoint),
        ("aws_allow_http", "true"),
        ("aws_access_key_id", "testing"),
        ("aws_secret_access_key", "testing"),
        ("aws_region", "us-east-1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[tokio::test]
async fn s3_round_trip_ranges_listing_and_errors() {
    let moto = start_moto();
    create_bucket(&moto.endpoint, "cohort-test");
    let store = Store::open_with("s3://cohort-test/cohorts/npc", &options(&moto.endpoint)).unwrap();
    assert_eq!(store.url(), "s3://cohort-test/cohorts/npc");

    let payload: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    store
        .put("volumes/P0001_t1.nii.gz", Bytes::from(payload.clone()))
        .await
        .unwrap();
    store
        .put("clinical.csv", Bytes::from_static(b"patient_id\nP0001\n"))
        .await
        .unwrap();

    assert_eq!(
        store.get("volumes/P0001_t1.nii.gz").await.unwrap().as_ref(),
        &payload[..]
    );
    let range = store
        .get_range("volumes/P0001_t1.nii.gz", 1000..1352)
        .await
        .unwrap();
    assert_eq!(range.as_ref(), &payload[1000..1352]);
    assert_eq!(
        store.size("volumes/P0001_t1.nii.gz").await.unwrap(),
        100_000
    );
    assert_eq!(
        store.list().await.unwrap(),
        vec![
            "clinical.csv".to_string(),
            "volumes/P0001_t1.nii.gz".to_string()
        ]
    );
    let volumes = store.child("volumes").unwrap();
    assert_eq!(
        volumes.list().await.unwrap(),
        vec!["P0001_t1.nii.gz".to_string()]
    );

    // Overwrite is whole-object: a reader sees the old bytes or the new ones.
    store
        .put("clinical.csv", Bytes::from_static(b"patient_id\nP0002\n"))
        .await
        .unwrap();
    assert_eq!(
        store.get("clinical.csv").await.unwrap().as_ref(),
        b"patient_id\nP0002\n"
    );

    match store.get("missing.nii.gz").await {
        Err(StoreError::NotFound { url }) => {
            assert_eq!(url, "s3://cohort-test/cohorts/npc/missing.nii.gz")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(!store.exists("missing.nii.gz").await.unwrap());
    assert!(matches!(
        store.get("../other/clinical.csv").await,
        Err(StoreError::UnsafePath { .. })
    ));
    store.delete("clinical.csv").await.unwrap();
    assert!(!store.exists("clinical.csv").await.unwrap());
}

#[tokio::test]
async fn s3_without_a_bucket_is_a_clear_error() {
    let moto = start_moto();
    let store = Store::open_with("s3://no-such-bucket/x", &options(&moto.endpoint)).unwrap();
    let err = store.get("a.csv").await.unwrap_err().to_string();
    assert!(err.contains("s3://no-such-bucket/x/a.csv"), "{err}");
}
