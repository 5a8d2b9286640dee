//! Parameter gradients as one flat `f32` buffer, and back.
//!
//! The sum all-reduce works on contiguous memory, so gradients are laid out in
//! the model's visiting order (which is the same on every rank: the module
//! tree is built from the same config). Parameters without a gradient (a rank
//! whose shard of the batch is empty, or a head that did not take part) count
//! as zeros, so every rank contributes a buffer of the same length. BatchNorm's
//! running statistics are buffers, not parameters, and are left out.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use crate::model::DenseNet3d;

/// Whether the visited float is a BatchNorm running statistic rather than a parameter.
fn is_buffer(path: &[String]) -> bool {
    matches!(
        path.last().map(String::as_str),
        Some("running_mean" | "running_var")
    )
}

/// Number of trainable values, the length of [`flatten`]'s buffer.
pub fn flat_len(model: &DenseNet3d) -> usize {
    model.num_trainable_params()
}

/// The gradients of every trainable parameter of `model`, concatenated.
pub fn flatten(model: &DenseNet3d, grads: &GradientsParams) -> Vec<f32> {
    struct Flatten<'a> {
        grads: &'a GradientsParams,
        path: Vec<String>,
        out: Vec<f32>,
    }
    impl ModuleVisitor for Flatten<'_> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if is_buffer(&self.path) {
                return;
            }
            match self.grads.get::<D>(param.id) {
                Some(g) => {
                    let data = g.into_data().convert::<f32>();
                    self.out
                        .extend_from_slice(data.as_slice::<f32>().expect("f32 after convert"));
                }
                None => {
                    let n = param.lazy_shape().num_elements();
                    self.out.resize(self.out.len() + n, 0.0);
                }
            }
        }
    }
    let mut v = Flatten {
        grads,
        path: Vec::new(),
        out: Vec::with_capacity(flat_len(model)),
    };
    model.visit(&mut v);
    v.out
}

/// The inverse of [`flatten`]: gradients for `model`'s parameters, on `device` (the inner,
/// non-autodiff device the optimizer works on).
pub fn unflatten(model: &DenseNet3d, flat: &[f32], device: &Device) -> GradientsParams {
    struct Unflatten<'a> {
        flat: &'a [f32],
        offset: usize,
        device: &'a Device,
        path: Vec<String>,
        out: GradientsParams,
    }
    impl ModuleVisitor for Unflatten<'_> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if is_buffer(&self.path) {
                return;
            }
            let shape = param.lazy_shape();
            let n = shape.num_elements();
            let values = self.flat[self.offset..self.offset + n].to_vec();
            self.offset += n;
            let t = Tensor::<D>::from_data(TensorData::new(values, shape), self.device);
            self.out.register(param.id, t);
        }
    }
    assert_eq!(
        flat.len(),
        flat_len(model),
        "gradient buffer does not match the model"
    );
    let mut v = Unflatten {
        flat,
        offset: 0,
        device,
        path: Vec::new(),
        out: GradientsParams::new(),
    };
    model.visit(&mut v);
    v.out
}
