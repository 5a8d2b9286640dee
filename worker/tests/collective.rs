//! Ring all-reduce and all-gather over real gRPC on loopback: several ranks in
//! one process, each with its own server, hub and ring; over TLS too; and the
//! hub's hand-framed gRPC against tonic's generated client.

use std::time::Duration;

use bytes::Bytes;
use cohort_common::rng::Rng;
use cohort_proto::auth::{self, ClientAuth, ClientTls, ServerTls, Token};
use cohort_proto::v1;
use cohort_proto::v1::collective_service_client::CollectiveServiceClient;
use cohort_worker::collective::{
    BlockingRing, Collective, CollectiveError, CollectiveHub, Ring, RingConfig, WireFormat,
    tune_server,
};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

fn token() -> Token {
    Token::new("collective-test-token", "test").unwrap()
}

/// One worker's receiving side: a hub behind the auth layer on 127.0.0.1:0.
async fn start_hub() -> (CollectiveHub, String) {
    start_hub_with(None).await
}

async fn start_hub_with(tls: Option<&ServerTls>) -> (CollectiveHub, String) {
    let hub = CollectiveHub::new(Duration::from_secs(5));
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap())
        .unwrap()
        .with_nodelay(Some(true));
    let addr = incoming.local_addr().unwrap().to_string();
    let mut server = tune_server(Server::builder());
    if let Some(tls) = tls {
        server = server.tls_config(tls.config().unwrap()).unwrap();
    }
    let router = server
        .layer(auth::server_layer(&token()))
        .add_service(hub.service());
    tokio::spawn(router.serve_with_incoming(incoming));
    (hub, addr)
}

struct Opts {
    bucket_bytes: usize,
    chunk_bytes: usize,
    wire: WireFormat,
    timeout: Duration,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            bucket_bytes: 25 << 20,
            chunk_bytes: 64,
            wire: WireFormat::F32,
            timeout: Duration::from_secs(10),
        }
    }
}

async fn rings(n: usize, opts: &Opts) -> Vec<Ring> {
    tls_rings(n, opts, None).await
}

/// `n` rings whose hubs serve TLS with `tls` and whose ranks dial with it.
async fn tls_rings(n: usize, opts: &Opts, tls: Option<(&ServerTls, &ClientTls)>) -> Vec<Ring> {
    let mut hubs = Vec::new();
    for _ in 0..n {
        hubs.push(start_hub_with(tls.map(|(server, _)| server)).await);
    }
    let peers: Vec<String> = hubs.iter().map(|(_, a)| a.clone()).collect();
    hubs.iter()
        .enumerate()
        .map(|(rank, (hub, _))| {
            let mut config = RingConfig::new(rank, peers.clone(), token());
            config.job_id = "job".into();
            config.trial = 3;
            config.group_epoch = 1;
            config.bucket_bytes = opts.bucket_bytes;
            config.chunk_bytes = opts.chunk_bytes;
            config.wire = opts.wire;
            config.timeout = opts.timeout;
            config.tls = tls.map(|(_, client)| client.clone());
            Ring::new(hub, config).unwrap()
        })
        .collect()
}

fn random_vectors(n: usize, len: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            (0..len)
                .map(|_| ((rng.uniform() - 0.5) * 8.0) as f32)
                .collect()
        })
        .collect()
}

/// Runs one all-reduce on every ring concurrently; returns rings and results.
async fn all_reduce(
    rings: Vec<Ring>,
    inputs: Vec<Vec<f32>>,
) -> (Vec<Ring>, Vec<Result<Vec<f32>, CollectiveError>>) {
    let tasks: Vec<_> = rings
        .into_iter()
        .zip(inputs)
        .map(|(mut ring, mut data)| {
            tokio::spawn(async move {
                let result = ring.all_reduce_sum(&mut data).await.map(|()| data);
                (ring, result)
            })
        })
        .collect();
    let mut rings = Vec::new();
    let mut results = Vec::new();
    for task in tasks {
        let (ring, result) = task.await.unwrap();
        rings.push(ring);
        results.push(result);
    }
    (rings, results)
}

/// The sum in the order the ring adds: segment `j` of each bucket starts at
/// rank `j` and adds ranks `j+1, j+2, ...` (mod n).
fn ring_order_sum(inputs: &[Vec<f32>], bucket_elems: usize, wire: WireFormat) -> Vec<f32> {
    let n = inputs.len();
    let len = inputs[0].len();
    let mut out = vec![0.0f32; len];
    let mut start = 0;
    while start < len.max(1) && start < len {
        let end = (start + bucket_elems).min(len);
        let blen = end - start;
        for j in 0..n {
            let lo = start + j * blen / n;
            let hi = start + (j + 1) * blen / n;
            for i in lo..hi {
                let mut s = wire.round(inputs[j][i]);
                for k in 1..n {
                    s = wire.round(s + inputs[(j + k) % n][i]);
                }
                out[i] = s;
            }
        }
        start = end;
    }
    out
}

fn f64_sum(inputs: &[Vec<f32>]) -> Vec<f64> {
    (0..inputs[0].len())
        .map(|i| inputs.iter().map(|v| v[i] as f64).sum())
        .collect()
}

async fn check_all_reduce(n: usize, len: usize, opts: &Opts, seed: u64) {
    let inputs = random_vectors(n, len, seed);
    let (_, results) = all_reduce(rings(n, opts).await, inputs.clone()).await;
    let results: Vec<Vec<f32>> = results.into_iter().map(Result::unwrap).collect();
    let expected = ring_order_sum(&inputs, (opts.bucket_bytes / 4).max(1), opts.wire);
    let exact = f64_sum(&inputs);
    for (rank, result) in results.iter().enumerate() {
        let same_bits = result
            .iter()
            .zip(&results[0])
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same_bits,
            "n={n} len={len}: rank {rank} differs from rank 0"
        );
        let ring_bits = result
            .iter()
            .zip(&expected)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(ring_bits, "n={n} len={len}: not the fixed ring-order sum");
    }
    let tolerance = match opts.wire {
        WireFormat::F32 => 1e-5,
        // Each of the n roundings costs up to 2^-9 of the running sum.
        WireFormat::Bf16 => n as f64 * 2f64.powi(-8),
    };
    for (i, (got, want)) in results[0].iter().zip(&exact).enumerate() {
        let scale: f64 = inputs
            .iter()
            .map(|v| (v[i] as f64).abs())
            .sum::<f64>()
            .max(1e-3);
        assert!(
            ((*got as f64) - want).abs() <= tolerance * scale,
            "n={n} len={len} element {i}: {got} vs {want}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_reduce_equals_the_serial_sum() {
    for n in [2, 3, 4] {
        // Lengths below n (empty segments), odd lengths, several chunks per segment.
        for len in [1, 2, 3, 5, 64, 1001] {
            check_all_reduce(n, len, &Opts::default(), 10 * n as u64 + len as u64).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_reduce_with_many_buckets_and_large_chunks() {
    let opts = Opts {
        bucket_bytes: 4 * 101,
        ..Opts::default()
    };
    check_all_reduce(3, 1003, &opts, 7).await;
    let opts = Opts {
        bucket_bytes: 4 * 4096,
        chunk_bytes: 1 << 20,
        ..Opts::default()
    };
    check_all_reduce(4, 100_003, &opts, 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_reduce_over_the_bf16_wire() {
    let opts = Opts {
        wire: WireFormat::Bf16,
        ..Opts::default()
    };
    for n in [2, 3, 4] {
        check_all_reduce(n, 777, &opts, 99 + n as u64).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn empty_all_reduce_and_a_sequence_of_collectives() {
    let inputs = vec![Vec::new(); 3];
    let (rings, results) = all_reduce(rings(3, &Opts::default()).await, inputs).await;
    assert!(results.iter().all(|r| r.as_ref().unwrap().is_empty()));
    assert!(rings.iter().all(|r| r.progress().done() == 1));
    // The same rings keep working, with the next sequence numbers.
    let inputs = random_vectors(3, 10, 5);
    let (rings, results) = all_reduce(rings, inputs).await;
    assert!(results.iter().all(Result::is_ok));
    assert!(rings.iter().all(|r| r.progress().done() == 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_gather_of_unequal_lengths() {
    let n = 4;
    let lens = [3usize, 0, 40, 17];
    let locals: Vec<Vec<f32>> = lens
        .iter()
        .enumerate()
        .map(|(r, &len)| (0..len).map(|i| (r * 1000 + i) as f32 + 0.5).collect())
        .collect();
    let tasks: Vec<_> = rings(n, &Opts::default())
        .await
        .into_iter()
        .zip(locals.clone())
        .map(|(mut ring, local)| tokio::spawn(async move { ring.all_gather(&local).await }))
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), locals);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rank_that_never_joins_is_named() {
    let opts = Opts {
        timeout: Duration::from_millis(400),
        ..Opts::default()
    };
    let inputs = random_vectors(3, 100, 1);
    let (mut rings, results) = all_reduce(rings(3, &opts).await, inputs).await;
    assert!(results.iter().all(Result::is_ok));
    // Collective #1: rank 2 stays away.
    let absent = rings.pop().unwrap();
    let inputs = random_vectors(2, 100, 2);
    let started = std::time::Instant::now();
    let (mut rings, results) = all_reduce(rings, inputs).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    for (rank, result) in results.iter().enumerate() {
        let message = result.as_ref().unwrap_err().to_string();
        assert_eq!(
            message, "rank 2 has not joined all-reduce #1",
            "rank {rank} reported the wrong cause"
        );
    }
    // A failed ring stays failed.
    let err = rings[0].all_reduce_sum(&mut [1.0]).await.unwrap_err();
    assert!(matches!(err, CollectiveError::Broken(_)), "{err}");
    drop(absent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mismatched_lengths_are_a_protocol_error() {
    let inputs = vec![vec![1.0; 10], vec![1.0; 11]];
    let (_, results) = all_reduce(rings(2, &Opts::default()).await, inputs).await;
    for result in &results {
        let message = result.as_ref().unwrap_err().to_string();
        assert!(message.contains("all-reduce #0"), "{message}");
    }
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(CollectiveError::Protocol { .. }))),
        "{results:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused() {
    let (hub_a, addr_a) = start_hub().await;
    let (hub_b, addr_b) = start_hub().await;
    let peers = vec![addr_a, addr_b];
    let wrong = Token::new("not-the-token", "test").unwrap();
    let mut config = RingConfig::new(0, peers.clone(), wrong);
    config.timeout = Duration::from_secs(2);
    let mut a = Ring::new(&hub_a, config).unwrap();
    let mut b = Ring::new(&hub_b, RingConfig::new(1, peers, token())).unwrap();
    let task = tokio::spawn(async move { b.all_reduce_sum(&mut [1.0]).await });
    let err = a.all_reduce_sum(&mut [1.0]).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("Unauthenticated: invalid bearer token"),
        "{err}"
    );
    task.abort();
}

#[test]
fn world_of_one_and_the_blocking_facade() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let hub = CollectiveHub::default();
    let ring = Ring::new(&hub, RingConfig::new(0, vec!["unused:1".into()], token())).unwrap();
    let mut ring = BlockingRing::new(ring, runtime.handle().clone());
    let mut data = vec![1.0, 2.0];
    ring.all_reduce_sum(&mut data).unwrap();
    assert_eq!(data, [1.0, 2.0]);
    assert_eq!(ring.all_gather(&[3.0]).unwrap(), vec![vec![3.0]]);
    assert_eq!(
        (ring.world(), ring.rank(), ring.progress().done()),
        (1, 0, 2)
    );

    // Two ranks from two training threads, through the blocking facade.
    let (hubs, peers) = runtime.block_on(async {
        let a = start_hub().await;
        let b = start_hub().await;
        (vec![a.0, b.0], vec![a.1, b.1])
    });
    let threads: Vec<_> = hubs
        .iter()
        .enumerate()
        .map(|(rank, hub)| {
            let ring = Ring::new(hub, RingConfig::new(rank, peers.clone(), token())).unwrap();
            let mut ring = BlockingRing::new(ring, runtime.handle().clone());
            std::thread::spawn(move || {
                let mut data = vec![rank as f32 + 1.0; 5];
                ring.all_reduce_sum(&mut data).unwrap();
                let gathered = ring.all_gather(&[rank as f32]).unwrap();
                (data, gathered)
            })
        })
        .collect();
    for thread in threads {
        let (data, gathered) = thread.join().unwrap();
        assert_eq!(data, vec![3.0; 5]);
        assert_eq!(gathered, vec![vec![0.0], vec![1.0]]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_reduce_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    // Peers dial 127.0.0.1:port, so the certificate names the IP address.
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = ServerTls {
        cert: cert.clone(),
        key,
        client_ca: None,
    };
    let client = ClientTls {
        ca: Some(cert),
        ..ClientTls::default()
    };
    let opts = Opts {
        chunk_bytes: 4096,
        ..Opts::default()
    };
    let inputs = random_vectors(3, 10_000, 42);
    let rings = tls_rings(3, &opts, Some((&server, &client))).await;
    let (_, results) = all_reduce(rings, inputs.clone()).await;
    let expected = ring_order_sum(&inputs, (opts.bucket_bytes / 4).max(1), opts.wire);
    for result in results {
        assert_eq!(result.unwrap(), expected);
    }

    // A rank that does not trust the CA behind its neighbour's certificate
    // does not connect at all.
    let stranger = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let other_ca = dir.path().join("other.pem");
    std::fs::write(&other_ca, stranger.cert.pem()).unwrap();
    let (hub, addr) = start_hub_with(Some(&server)).await;
    let (hub_b, addr_b) = start_hub_with(Some(&server)).await;
    let peers = vec![addr, addr_b];
    let mut config = RingConfig::new(0, peers.clone(), token());
    config.timeout = Duration::from_secs(2);
    config.tls = Some(ClientTls {
        ca: Some(other_ca),
        ..ClientTls::default()
    });
    let mut untrusting = Ring::new(&hub, config).unwrap();
    let mut config = RingConfig::new(1, peers, token());
    config.timeout = Duration::from_secs(2);
    config.tls = Some(client.clone());
    let mut b = Ring::new(&hub_b, config).unwrap();
    let task = tokio::spawn(async move { b.all_reduce_sum(&mut [1.0]).await });
    let err = untrusting.all_reduce_sum(&mut [1.0]).await.unwrap_err();
    assert!(
        matches!(err, CollectiveError::Send { rank: 1, .. })
            && err.to_string().contains("certificate"),
        "{err}"
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_speaks_grpc_to_the_generated_client() {
    let (hub_a, addr_a) = start_hub().await;
    let (hub_b, addr_b) = start_hub().await;
    let peers = vec![addr_a, addr_b.clone()];
    // Rank 0 is registered (it receives rank 1's slice) but its part is played by
    // tonic's generated client below.
    let ring = |hub: &CollectiveHub, rank: usize| {
        let mut config = RingConfig::new(rank, peers.clone(), token());
        config.job_id = "job".into();
        config.trial = 3;
        config.group_epoch = 1;
        Ring::new(hub, config).unwrap()
    };
    let _rank0 = ring(&hub_a, 0);
    let mut rank1 = ring(&hub_b, 1);
    let gathered = tokio::spawn(async move {
        let result = rank1.all_gather(&[5.0, 6.0]).await;
        (rank1, result)
    });

    let channel = auth::endpoint(&addr_b, None)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = CollectiveServiceClient::with_interceptor(channel, ClientAuth::new(&token()));
    let values = [1.0f32, 2.0, 3.0];
    let chunk = v1::Chunk {
        job_id: "job".into(),
        trial: 3,
        group_epoch: 1,
        collective: 0,
        kind: v1::CollectiveKind::AllGather as i32,
        from_rank: 0,
        format: v1::WireFormat::F32 as i32,
        segment: 0,
        segment_len: values.len() as u64,
        data: Bytes::from(
            values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>(),
        ),
        ..Default::default()
    };
    client
        .send(tokio_stream::iter([chunk.clone()]))
        .await
        .expect("the hub took the generated client's stream");
    let (_rank1, result) = gathered.await.unwrap();
    assert_eq!(result.unwrap(), vec![values.to_vec(), vec![5.0, 6.0]]);

    // Errors travel as gRPC statuses: the same collective again is refused.
    let err = client.send(tokio_stream::iter([chunk])).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("already over"), "{err:?}");
}
