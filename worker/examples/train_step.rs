//! Training-step benchmark (`bench/train_step/run.sh` drives it): the median time of one
//! step — forward, exact Cox loss, backward, Adam — of a DenseNet preset on a backend, and
//! the process's peak RSS. Prints one JSON line.
//!
//! ```sh
//! cargo run -p cohort-worker --features tch --example train_step -- \
//!     --backend tch --preset small --shape 4x1x32x32x32 --steps 10
//! ```
//!
//! `--ops` instead times the step's kernels one by one (conv3d forward+backward per layer
//! shape, batch norm, pooling, concatenation), to see where a backend spends the step.
//!
//! Threads: flex uses rayon's pool (`RAYON_NUM_THREADS`), libtorch its intra-op pool
//! (`OMP_NUM_THREADS`, or `--threads`, which sets both where it can).

use std::time::Instant;

use burn::optim::AdamConfig;
use burn::tensor::module::conv3d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use cohort_common::survival::cox::Ties;
use cohort_worker::backend::{Backend, DeviceKind, DeviceSpec};
use cohort_worker::model::pool::{avg_pool3d, max_pool3d};
use cohort_worker::model::{DenseNet3d, DenseNetConfig, Norm};
use cohort_worker::train::cox_gradients;

struct Args {
    backend: Backend,
    preset: String,
    shape: [usize; 5],
    steps: usize,
    warmup: usize,
    ops: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        backend: Backend::Flex,
        preset: "small".into(),
        shape: [4, 1, 32, 32, 32],
        steps: 10,
        warmup: 2,
        ops: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--backend" => args.backend = value()?.parse().map_err(|e| format!("{e}"))?,
            "--preset" => args.preset = value()?,
            "--shape" => {
                let v: Vec<usize> = value()?
                    .split('x')
                    .map(|s| s.parse().map_err(|_| format!("bad --shape part {s:?}")))
                    .collect::<Result<_, _>>()?;
                args.shape = v
                    .try_into()
                    .map_err(|_| "--shape is NxCxDxHxW".to_string())?;
            }
            "--steps" => args.steps = value()?.parse().map_err(|_| "bad --steps")?,
            "--warmup" => args.warmup = value()?.parse().map_err(|_| "bad --warmup")?,
            "--ops" => args.ops = true,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// Peak resident set size of this process, in MiB (Linux `VmHWM`).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU time (user + system) of this process so far, in seconds, from `/proc/self/stat`
/// (clock ticks of 1/100 s). On a shared machine, CPU time per step is much less disturbed
/// by other processes than wall time.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime are 14 and 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(f64::NAN)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Times `f` (which must end with a host read, so the device has finished): median seconds.
fn time_it(warmup: usize, steps: usize, mut f: impl FnMut()) -> (f64, Vec<f64>) {
    for _ in 0..warmup {
        f();
    }
    let times: Vec<f64> = (0..steps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    (median(times.clone()), times)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let spec = match DeviceSpec::new(Some(args.backend), DeviceKind::Cpu) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let device = spec.device().expect("a CPU device").autodiff();
    device.seed(1);
    if args.ops {
        ops(&args, &device);
    } else {
        step(&args, &device);
    }
}

fn step(args: &Args, device: &Device) {
    let cfg = DenseNetConfig::preset(&args.preset, args.shape[1]).expect("a preset");
    let mut model = Some(DenseNet3d::new(&cfg, device).expect("a valid preset"));
    let mut optim = AdamConfig::new().init();
    let n = args.shape[0];
    let x = Tensor::<5>::random(args.shape, Distribution::Normal(0.0, 1.0), device);
    let time: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
    let event: Vec<bool> = (0..n).map(|i| i % 4 != 3).collect();
    let mut loss = 0.0;
    let mut cpu = Vec::new();
    let mut optim_s = Vec::new();
    let (med, times) = time_it(args.warmup, args.steps, || {
        let c0 = cpu_seconds();
        let m = model.take().expect("model");
        // `cox_step`, in its two phases: forward + loss + backward, then the optimizer.
        let (grads, l) =
            cox_gradients(&m, x.clone(), &time, &event, Ties::Efron).expect("a finite loss");
        let t_opt = Instant::now();
        let m = optim.step(1e-4, m, grads);
        // The loss read synchronised the forward; read one updated weight to make sure the
        // optimizer step has run too.
        let w: Vec<f32> = m
            .conv0
            .weight
            .val()
            .slice([0..1, 0..1, 0..1, 0..1, 0..1])
            .into_data()
            .convert::<f32>()
            .try_into_vec()
            .unwrap_or_default();
        assert!(w.iter().all(|v| v.is_finite()));
        optim_s.push(t_opt.elapsed().as_secs_f64());
        loss = l.loss;
        model = Some(m);
        cpu.push(cpu_seconds() - c0);
    });
    let cpu = median(cpu[args.warmup..].to_vec());
    println!(
        "{}",
        serde_json::json!({
            "impl": format!("burn-{}", args.backend),
            "preset": args.preset,
            "shape": args.shape,
            "params": cfg.expected_num_params(),
            "median_s": med,
            "min_s": times.iter().copied().fold(f64::INFINITY, f64::min),
            "cpu_median_s": cpu,
            "optim_median_s": median(optim_s[args.warmup..].to_vec()),
            "times_s": times,
            "loss": loss,
            "peak_rss_mib": peak_rss_mib(),
            "rayon_threads": std::env::var("RAYON_NUM_THREADS").ok(),
            "omp_threads": std::env::var("OMP_NUM_THREADS").ok(),
        })
    );
}

/// One timed kernel of `--ops`.
struct Row {
    kind: &'static str,
    what: String,
    count: usize,
    median_s: f64,
    /// The forward pass alone (convolutions only).
    forward_s: Option<f64>,
}

/// The step's kernels one by one, each forward + backward (`sum().backward()` and a read of
/// a gradient), at the shapes the preset sees for `args.shape`. Each row is weighted by how
/// often its shape occurs in one step, so the per-kind totals add up to about a step.
/// Bottleneck 1^3 convolutions grow in input channels along a block: the block's first and
/// last are timed and their mean stands for all (cost is linear in the input channels).
fn ops(args: &Args, device: &Device) {
    let cfg = DenseNetConfig::preset(&args.preset, args.shape[1]).expect("a preset");
    let [n, c_in, d0, _, _] = args.shape;
    let reps = args.steps.clamp(3, 7);
    let mut rows: Vec<Row> = Vec::new();
    let normal = |shape: [usize; 5]| {
        Tensor::<5>::random(shape, Distribution::Normal(0.0, 1.0), device).require_grad()
    };
    // Forward-only times of the convolutions timed since the last row: (sum, count).
    let conv_fwd = std::cell::Cell::new((0.0f64, 0usize));
    // The stem's input needs no gradient (it is data); every other conv's input does.
    let time_conv = |ci: usize, co: usize, k: usize, stride: usize, s: usize| {
        let x = normal([n, ci, s, s, s]);
        let x = if stride == 2 { x.detach() } else { x };
        let w = normal([co, ci, k, k, k]);
        let opts = ConvOptions::new([stride; 3], [k / 2; 3], [1; 3], 1);
        let both = time_it(1, reps, || {
            let g = conv3d(x.clone(), w.clone(), None, opts.clone())
                .sum()
                .backward();
            let _ = w.grad(&g).map(|g| g.into_data());
        })
        .0;
        // The forward alone, without autodiff bookkeeping: splits the kernel time in two.
        let (xf, wf) = (x.clone().detach(), w.clone().detach());
        let fwd = time_it(1, reps, || {
            let _ = conv3d(xf.clone(), wf.clone(), None, opts.clone())
                .sum()
                .into_data();
        })
        .0;
        let (sum, count) = conv_fwd.get();
        conv_fwd.set((sum + fwd, count + 1));
        both
    };
    let time_norm = |c: usize, s: usize| {
        let x = normal([n, c, s, s, s]);
        let norm = Norm::new(cfg.norm, c, device);
        time_it(1, reps, || {
            let y = burn::tensor::activation::relu(norm.forward(x.clone()));
            let g = y.sum().backward();
            let _ = x.grad(&g).map(|g| g.into_data());
        })
        .0
    };
    let mut push = |kind: &'static str, what: String, count: usize, median_s: f64| {
        let (sum, n) = conv_fwd.replace((0.0, 0));
        rows.push(Row {
            kind,
            what,
            count,
            median_s,
            forward_s: (n > 0).then(|| sum / n as f64),
        })
    };

    let f0 = cfg.init_features;
    push(
        "conv3d",
        format!("stem 7^3/2 {c_in}->{f0} {d0}^3"),
        1,
        time_conv(c_in, f0, 7, 2, d0),
    );
    let mut s = d0.div_ceil(2);
    push(
        "batch_norm+relu",
        format!("{f0}ch {s}^3"),
        1,
        time_norm(f0, s),
    );
    let x = normal([n, f0, s, s, s]);
    let t = time_it(1, reps, || {
        let g = max_pool3d(x.clone(), 3, 2, 1).sum().backward();
        let _ = x.grad(&g).map(|g| g.into_data());
    });
    push("pool", format!("max 3^3/2 {f0}ch {s}^3"), 1, t.0);
    s = s.div_ceil(2);
    let (k, b) = (cfg.growth_rate, cfg.bn_size * cfg.growth_rate);
    let mut c = f0;
    for (i, &layers) in cfg.block_config.iter().enumerate() {
        let blk = i + 1;
        let c_last = c + (layers - 1) * k;
        let t1 = (time_conv(c, b, 1, 1, s) + time_conv(c_last, b, 1, 1, s)) / 2.0;
        push(
            "conv3d",
            format!("block{blk} 1^3 {c}..{c_last}->{b} {s}^3"),
            layers,
            t1,
        );
        push(
            "conv3d",
            format!("block{blk} 3^3 {b}->{k} {s}^3"),
            layers,
            time_conv(b, k, 3, 1, s),
        );
        let tn = (time_norm(c, s) + time_norm(c_last, s)) / 2.0;
        push(
            "batch_norm+relu",
            format!("block{blk} norm1 {c}..{c_last}ch {s}^3"),
            layers,
            tn,
        );
        push(
            "batch_norm+relu",
            format!("block{blk} norm2 {b}ch {s}^3"),
            layers,
            time_norm(b, s),
        );
        let (xa, xb) = (normal([n, c_last, s, s, s]), normal([n, k, s, s, s]));
        let t = time_it(1, reps, || {
            let g = Tensor::cat(vec![xa.clone(), xb.clone()], 1)
                .sum()
                .backward();
            let _ = xa.grad(&g).map(|g| g.into_data());
        });
        push(
            "cat",
            format!("block{blk} cat {c_last}+{k} {s}^3"),
            layers,
            t.0,
        );
        c += layers * k;
        push(
            "batch_norm+relu",
            format!("after block{blk} {c}ch {s}^3"),
            1,
            time_norm(c, s),
        );
        if i + 1 < cfg.block_config.len() {
            let t = time_conv(c, c / 2, 1, 1, s);
            push(
                "conv3d",
                format!("transition{blk} 1^3 {c}->{} {s}^3", c / 2),
                1,
                t,
            );
            c /= 2;
            let x = normal([n, c, s, s, s]);
            let t = time_it(1, reps, || {
                let g = avg_pool3d(x.clone(), 2).sum().backward();
                let _ = x.grad(&g).map(|g| g.into_data());
            });
            push("pool", format!("avg 2^3 {c}ch {s}^3"), 1, t.0);
            s /= 2;
        }
    }
    let mut totals = std::collections::BTreeMap::<&str, f64>::new();
    for r in &rows {
        *totals.entry(r.kind).or_default() += r.median_s * r.count as f64;
    }
    let ops: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({"kind": r.kind, "what": r.what, "count": r.count,
                "median_s": r.median_s, "forward_s": r.forward_s,
                "total_s": r.median_s * r.count as f64})
        })
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "impl": format!("burn-{}", args.backend),
            "mode": "ops",
            "preset": args.preset,
            "shape": args.shape,
            "totals_s": totals,
            "ops": ops,
        })
    );
}
