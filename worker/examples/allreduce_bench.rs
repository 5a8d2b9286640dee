//! One rank of the all-reduce benchmark (bench/allreduce/run.sh starts one
//! process per rank): serves the collective hub at `peers[rank]`, then times
//! `iters` sum all-reduces of each size after `warmup` untimed ones. Rank 0
//! prints one JSON line per size with the median time and the bus bandwidth
//! `2 (n-1) / n * bytes / time`, the figure NCCL and gloo benchmarks report.
//! The token comes from COHORT_TOKEN / COHORT_TOKEN_FILE.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use cohort_proto::auth::{self, Token};
use cohort_worker::collective::{CollectiveHub, Ring, RingConfig, WireFormat, tune_server};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long)]
    rank: usize,
    /// Comma-separated host:port of every rank, in rank order.
    #[arg(long, value_delimiter = ',')]
    peers: Vec<String>,
    /// Comma-separated numbers of f32 values.
    #[arg(long, value_delimiter = ',', default_value = "11200000,1000000")]
    sizes: Vec<usize>,
    #[arg(long, default_value_t = 20)]
    iters: usize,
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// f32 or bf16.
    #[arg(long, default_value = "f32")]
    wire: String,
    #[arg(long, default_value_t = 1 << 20)]
    chunk_bytes: usize,
    #[arg(long, default_value_t = 25 << 20)]
    bucket_bytes: usize,
    /// Tokio worker threads (the ring's I/O); 0: one per core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    cohort_worker::alloc::keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if args.threads > 0 {
        runtime.worker_threads(args.threads);
    }
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let token = Token::require_env()?;
    let n = args.peers.len();
    let listen = args
        .peers
        .get(args.rank)
        .context("rank outside the peer list")?
        .parse()
        .context("peers must be ip:port")?;
    let hub = CollectiveHub::new(Duration::from_secs(60));
    let incoming = TcpIncoming::bind(listen)?.with_nodelay(Some(true));
    let router = tune_server(Server::builder())
        .layer(auth::server_layer(&token))
        .add_service(hub.service());
    tokio::spawn(router.serve_with_incoming(incoming));

    let mut config = RingConfig::new(args.rank, args.peers.clone(), token);
    config.job_id = "bench".into();
    config.chunk_bytes = args.chunk_bytes;
    config.bucket_bytes = args.bucket_bytes;
    config.timeout = Duration::from_secs(60);
    config.wire = match args.wire.as_str() {
        "f32" => WireFormat::F32,
        "bf16" => WireFormat::Bf16,
        other => anyhow::bail!("--wire {other}: expected f32 or bf16"),
    };
    let mut ring = Ring::new(&hub, config)?;

    for &size in &args.sizes {
        let input: Vec<f32> = (0..size)
            .map(|i| ((i * 7 + args.rank * 13) % 1000) as f32 * 1e-3)
            .collect();
        let mut data = input.clone();
        let mut times = Vec::with_capacity(args.iters);
        let mut cpu = 0.0;
        for i in 0..args.warmup + args.iters {
            data.copy_from_slice(&input);
            let cpu_start = cpu_seconds();
            let start = Instant::now();
            ring.all_reduce_sum(&mut data).await?;
            if i >= args.warmup {
                times.push(start.elapsed().as_secs_f64());
                cpu += cpu_seconds() - cpu_start;
            }
        }
        let cpu = cpu / args.iters as f64;
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let bytes = (size * 4) as f64;
        let busbw = 2.0 * (n as f64 - 1.0) / n as f64 * bytes / median / 1e9;
        if args.rank == 0 {
            println!(
                "{{\"impl\":\"cohort-ring-{}\",\"n\":{n},\"elems\":{size},\"median_s\":{median:.6},\"min_s\":{:.6},\"busbw_gbs\":{busbw:.3},\"cpu_s\":{cpu:.4}}}",
                args.wire, times[0]
            );
        }
    }
    // Let the last chunks drain before the servers go away.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

/// CPU time (user + system, all threads) of this process so far, from
/// /proc/self/stat in clock ticks (100 Hz on Linux). On a loaded machine the
/// CPU an all-reduce costs is steadier than its wall time.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which is in parentheses): utime is the
    // 12th and stime the 13th of them.
    let Some(rest) = stat.rsplit(')').next() else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}
