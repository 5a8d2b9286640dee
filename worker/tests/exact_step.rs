//! The exact-Cox data-parallel step: sharding a global batch over a group of workers gives
//! the single-worker gradient of the whole batch, while the naive alternative (each worker's
//! own Cox loss on its shard, gradients averaged) does not.
//!
//! The group here is threads in one process exchanging buffers through shared memory, so
//! the test checks the step's algebra, independently of the gRPC transport.

use std::sync::{Arc, Barrier, Mutex};

use burn::tensor::{Device, Distribution, Tensor};
use cohort_common::survival::cox::Ties;
use cohort_worker::collective::{Collective, CollectiveError, LocalCollective, Progress};
use cohort_worker::model::file::{weights_from_bytes, weights_to_bytes};
use cohort_worker::model::{DenseNet3d, DenseNetConfig, NormKind};
use cohort_worker::train::grads::flatten;
use cohort_worker::train::{StepBatch, batch_gradients};

/// Ranks as threads: every collective is a write to this rank's slot, a barrier, a read of
/// every slot and a second barrier. Sums run in rank order, so every rank gets the same bits.
struct ThreadGroup {
    rank: usize,
    world: usize,
    slots: Arc<Mutex<Vec<Vec<f32>>>>,
    barrier: Arc<Barrier>,
}

impl ThreadGroup {
    fn group(world: usize) -> Vec<ThreadGroup> {
        let slots = Arc::new(Mutex::new(vec![Vec::new(); world]));
        let barrier = Arc::new(Barrier::new(world));
        (0..world)
            .map(|rank| ThreadGroup {
                rank,
                world,
                slots: slots.clone(),
                barrier: barrier.clone(),
            })
            .collect()
    }
}

impl Collective for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world(&self) -> usize {
        self.world
    }
    fn all_gather(&mut self, local: &[f32]) -> Result<Vec<Vec<f32>>, CollectiveError> {
        self.slots.lock().unwrap()[self.rank] = local.to_vec();
        self.barrier.wait();
        let all = self.slots.lock().unwrap().clone();
        self.barrier.wait();
        Ok(all)
    }
    fn all_reduce_sum(&mut self, data: &mut [f32]) -> Result<(), CollectiveError> {
        let all = self.all_gather(data)?;
        for (i, v) in data.iter_mut().enumerate() {
            *v = all.iter().map(|part| part[i]).sum();
        }
        Ok(())
    }
    fn progress(&self) -> Progress {
        Progress::default()
    }
}

const BATCH: usize = 7;
const SHAPE: [usize; 4] = [1, 16, 16, 16];

fn config() -> DenseNetConfig {
    // Instance norm: per-sample statistics, so sharding does not change the forward pass.
    DenseNetConfig::preset("tiny", 1)
        .unwrap()
        .with_norm(NormKind::Instance)
}

/// One model's weights, and the batch: inputs, times (with a tie) and events.
fn fixture() -> (Vec<u8>, Vec<f32>, Vec<f64>, Vec<bool>) {
    let device = Device::flex();
    device.seed(11);
    let model = DenseNet3d::new(&config(), &device).unwrap();
    let [c, d, h, w] = SHAPE;
    let x = Tensor::<5>::random([BATCH, c, d, h, w], Distribution::Normal(0.0, 1.0), &device);
    let x = x.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    let time = vec![5.0, 12.0, 3.0, 12.0, 30.0, 8.0, 20.0];
    let event = vec![true, true, false, true, false, true, true];
    (weights_to_bytes(&model).unwrap(), x, time, event)
}

fn model_from(bytes: &[u8], device: &Device) -> DenseNet3d {
    let mut m = DenseNet3d::new(&config(), device).unwrap();
    weights_from_bytes(&mut m, bytes.to_vec(), "fixture").unwrap();
    m
}

/// The flattened gradient of rank `sync.rank()` for the members `range` of the batch.
fn gradient(
    weights: &[u8],
    x: &[f32],
    time: &[f64],
    event: &[bool],
    shard_sizes: &[usize],
    sync: &mut dyn Collective,
) -> Vec<f32> {
    let device = Device::flex().autodiff();
    let model = model_from(weights, &device);
    let per = SHAPE.iter().product::<usize>();
    let start: usize = shard_sizes[..sync.rank()].iter().sum();
    let n = shard_sizes[sync.rank()];
    let batch = StepBatch {
        time,
        event,
        shard_sizes,
        inputs: x[start * per..(start + n) * per].to_vec(),
        sample_shape: SHAPE,
    };
    let (grads, _) = batch_gradients(&model, batch, Ties::Efron, sync, &device).unwrap();
    flatten(&model, &grads)
}

fn shard_sizes(world: usize) -> Vec<usize> {
    (0..world)
        .map(|r| (r + 1) * BATCH / world - r * BATCH / world)
        .collect()
}

fn max_rel_diff(a: &[f32], b: &[f32]) -> f64 {
    let scale = a.iter().map(|v| v.abs() as f64).fold(0.0, f64::max);
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs() / scale)
        .fold(0.0, f64::max)
}

#[test]
fn sharded_exact_cox_gradients_equal_the_single_worker_gradient_and_naive_ones_do_not() {
    let (weights, x, time, event) = fixture();
    let single = gradient(
        &weights,
        &x,
        &time,
        &event,
        &[BATCH],
        &mut LocalCollective::new(),
    );
    assert!(single.iter().any(|g| *g != 0.0));

    for world in [2, 3] {
        let sizes = shard_sizes(world);
        let results: Vec<Vec<f32>> = std::thread::scope(|s| {
            let handles: Vec<_> = ThreadGroup::group(world)
                .into_iter()
                .map(|mut g| {
                    let (weights, x, time, event, sizes) = (&weights, &x, &time, &event, &sizes);
                    s.spawn(move || gradient(weights, x, time, event, sizes, &mut g))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in &results[1..] {
            assert_eq!(r, &results[0], "every rank must hold the same gradient");
        }
        let diff = max_rel_diff(&single, &results[0]);
        assert!(
            diff < 1e-5,
            "{world} workers: exact gradient differs by {diff}"
        );

        // Naive: each worker's own Cox loss on its shard, gradients averaged.
        let mut naive = vec![0.0f32; single.len()];
        let mut start = 0;
        for &n in &sizes {
            let g = gradient(
                &weights,
                &x[start * SHAPE.iter().product::<usize>()..],
                &time[start..start + n],
                &event[start..start + n],
                &[n],
                &mut LocalCollective::new(),
            );
            for (a, b) in naive.iter_mut().zip(g) {
                *a += b / world as f32;
            }
            start += n;
        }
        let naive_diff = max_rel_diff(&single, &naive);
        assert!(
            naive_diff > 1e-2,
            "{world} workers: the naive gradient should differ from the global one, by {naive_diff}"
        );
    }
}
