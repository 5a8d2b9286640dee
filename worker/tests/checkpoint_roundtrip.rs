//! A model and optimizer restored from their checkpoint bytes take exactly the step the
//! originals would have taken: the property resuming relies on.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Tensor};
use cohort_worker::model::file::{weights_from_bytes, weights_to_bytes};
use cohort_worker::model::{DenseNet3d, DenseNetConfig};

fn floats(model: &DenseNet3d) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().into_data().convert::<f32>();
            self.0.extend_from_slice(data.as_slice::<f32>().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    // valid() syncs BatchNorm's pending running-statistics update, which a plain visit
    // would not see.
    model.valid().visit(&mut c);
    c.0
}

fn step(model: DenseNet3d, optim: &mut ModuleOptimizer, x: &Tensor<5>) -> DenseNet3d {
    let loss = model.log_risk(x.clone()).powi_scalar(2).sum();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    optim.step(1e-2, model, grads)
}

#[test]
fn restored_weights_and_optimizer_take_the_same_next_step() {
    let device = Device::flex().autodiff();
    device.seed(3);
    let cfg = DenseNetConfig::preset("tiny", 1).unwrap();
    let x = Tensor::<5>::random([4, 1, 16, 16, 16], Distribution::Normal(0.0, 1.0), &device);
    let mut model = DenseNet3d::new(&cfg, &device).unwrap();
    let mut optim = AdamWConfig::new().with_epsilon(1e-8).init();
    for _ in 0..2 {
        model = step(model, &mut optim, &x);
    }
    let model_bytes = weights_to_bytes(&model).unwrap();
    let optim_bytes = optim.into_bytes().unwrap().to_vec();

    let mut restored = DenseNet3d::new(&cfg, &device).unwrap();
    weights_from_bytes(&mut restored, model_bytes, "test").unwrap();
    assert_eq!(floats(&restored), floats(&model), "weights round trip");
    let mut restored_optim = AdamWConfig::new()
        .with_epsilon(1e-8)
        .init()
        .from_bytes(burn::tensor::Bytes::from_bytes_vec(optim_bytes))
        .unwrap();

    let a = floats(&step(model, &mut optim, &x));
    let b = floats(&step(restored, &mut restored_optim, &x));
    let first = a.iter().zip(&b).position(|(p, q)| p != q);
    assert!(first.is_none(), "the steps differ from value {first:?} on");
}
