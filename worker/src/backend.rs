//! Which burn backend and device a worker computes on: the one place that knows.
//!
//! burn 0.22 tensors carry their backend in their [`Device`], so the model, the loss and the
//! training code name no backend type; choosing a backend is choosing a `Device`, and this
//! module turns the command line's `--backend flex|tch` and `--device cpu|cuda:N` into one.
//!
//! Why two backends, and why behind a cargo feature:
//! - [`Backend::Flex`] (burn-flex, pure Rust, rayon + SIMD kernels) is the default, so a
//!   fresh machine with only a Rust toolchain builds and runs everything, CPU only.
//! - [`Backend::Tch`] (burn-tch: libtorch CPU or CUDA) is for GPU workers. It needs
//!   libtorch at build and run time (taken from the PyPI `torch==2.9.0` wheel with
//!   `LIBTORCH_USE_PYTORCH=1`), so it is compiled only with the `tch` feature of
//!   `cohort-worker`. A binary built without it still parses `--backend tch` and
//!   `--device cuda:N`, and says how to rebuild rather than pretending the flag is unknown.
//!
//! burn-tch is deprecated upstream in favour of burn's CubeCL backends. Adding one (say a
//! `cuda` feature with burn-cuda) is one more [`Backend`] variant, its name in
//! [`Backend::from_str`], and its arm in [`DeviceSpec::device`].

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

/// A burn backend this worker can compute on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// burn-flex: pure-Rust CPU kernels (always built).
    Flex,
    /// burn-tch: libtorch, CPU or CUDA (needs the `tch` feature).
    Tch,
}

impl Backend {
    /// Every backend name, for help texts and errors.
    pub const NAMES: &'static [&'static str] = &["flex", "tch"];

    /// The backend's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Tch => "tch",
        }
    }

    /// Whether this binary was built with the backend.
    pub fn is_built(self) -> bool {
        match self {
            Backend::Flex => true,
            Backend::Tch => cfg!(feature = "tch"),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "flex" => Ok(Backend::Flex),
            "tch" | "libtorch" => Ok(Backend::Tch),
            _ => Err(BackendError::UnknownBackend(s.to_string())),
        }
    }
}

/// Where on a backend tensors live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// The host CPU.
    Cpu,
    /// CUDA GPU number `N` (`cuda:N`; `cuda` alone is `cuda:0`).
    Cuda(usize),
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceKind::Cpu => f.write_str("cpu"),
            DeviceKind::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl FromStr for DeviceKind {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "cpu" => return Ok(DeviceKind::Cpu),
            "cuda" => return Ok(DeviceKind::Cuda(0)),
            _ => {}
        }
        lower
            .strip_prefix("cuda:")
            .and_then(|i| i.parse().ok())
            .map(DeviceKind::Cuda)
            .ok_or_else(|| BackendError::UnknownDevice(s.to_string()))
    }
}

/// An impossible backend / device request; the message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// `--backend` names no backend.
    #[error("unknown backend {0:?} (known: flex, tch)")]
    UnknownBackend(String),
    /// `--device` is neither `cpu` nor `cuda:N`.
    #[error("unknown device {0:?} (expected cpu or cuda:N, e.g. cuda:0)")]
    UnknownDevice(String),
    /// The backend was not compiled into this binary.
    #[error(
        "{what} needs the tch (libtorch) backend, and this cohort-worker was built without it: \
         rebuild with `LIBTORCH_USE_PYTORCH=1 cargo build --features cohort-worker/tch` \
         (python3 with torch==2.9.0 installed)"
    )]
    NotBuilt {
        /// What was asked for (`--backend tch`, `--device cuda:0`).
        what: String,
    },
    /// The backend cannot drive that device.
    #[error("the {backend} backend runs on the CPU only; {device} needs --backend tch")]
    Unsupported {
        /// The backend.
        backend: Backend,
        /// The device.
        device: DeviceKind,
    },
    /// libtorch sees fewer GPUs than the index asks for.
    #[error("{device} requested, but libtorch sees {available} CUDA device(s)")]
    NoSuchGpu {
        /// The device.
        device: DeviceKind,
        /// How many CUDA devices libtorch reports.
        available: usize,
    },
}

/// A backend and a device on it: what `--backend` and `--device` select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSpec {
    /// The backend.
    pub backend: Backend,
    /// The device.
    pub device: DeviceKind,
}

impl Default for DeviceSpec {
    /// burn-flex on the CPU.
    fn default() -> Self {
        Self {
            backend: Backend::Flex,
            device: DeviceKind::Cpu,
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.backend, self.device)
    }
}

impl DeviceSpec {
    /// The spec for `--backend` (when given) and `--device`. Without a backend, a CPU means
    /// flex and a GPU means tch, the only backend that drives one today. Checks that the
    /// backend can drive the device and was built into this binary.
    pub fn new(backend: Option<Backend>, device: DeviceKind) -> Result<Self, BackendError> {
        let backend = backend.unwrap_or(match device {
            DeviceKind::Cpu => Backend::Flex,
            DeviceKind::Cuda(_) => Backend::Tch,
        });
        if !backend.is_built() {
            let what = match (backend, device) {
                (_, DeviceKind::Cuda(_)) => format!("--device {device}"),
                _ => format!("--backend {backend}"),
            };
            return Err(BackendError::NotBuilt { what });
        }
        if backend == Backend::Flex && device != DeviceKind::Cpu {
            return Err(BackendError::Unsupported { backend, device });
        }
        Ok(Self { backend, device })
    }

    /// The burn device (plain, for inference; call `.autodiff()` on it to train).
    ///
    /// For CUDA, first checks that libtorch sees the GPU, so a wrong index is an error here
    /// rather than a panic inside the first tensor operation.
    pub fn device(&self) -> Result<Device, BackendError> {
        match (self.backend, self.device) {
            (Backend::Flex, DeviceKind::Cpu) => Ok(Device::flex()),
            #[cfg(feature = "tch")]
            (Backend::Tch, DeviceKind::Cpu) => Ok(tch_device::cpu()),
            #[cfg(feature = "tch")]
            (Backend::Tch, DeviceKind::Cuda(i)) => tch_device::cuda(i),
            // `new` refuses the rest; a spec built field by field gets the same errors.
            (backend, device) => Err(Self::new(Some(backend), device)
                .err()
                .unwrap_or(BackendError::Unsupported { backend, device })),
        }
    }
}

/// The libtorch devices, where burn-tch's deprecation warning is silenced once.
#[cfg(feature = "tch")]
mod tch_device {
    use super::{BackendError, DeviceKind};
    use burn::tensor::Device;

    /// libtorch on the CPU.
    #[allow(deprecated)] // burn-tch is deprecated upstream; see the module docs.
    pub fn cpu() -> Device {
        Device::libtorch()
    }

    /// libtorch on CUDA device `index`, if libtorch sees it.
    #[allow(deprecated)]
    pub fn cuda(index: usize) -> Result<Device, BackendError> {
        let available = cuda_device_count();
        if index >= available {
            return Err(BackendError::NoSuchGpu {
                device: DeviceKind::Cuda(index),
                available,
            });
        }
        Ok(Device::libtorch_cuda(index))
    }

    /// How many CUDA devices libtorch sees (0 with a CPU-only libtorch or no driver).
    pub fn cuda_device_count() -> usize {
        // SAFETY: a plain query of libtorch's CUDA runtime with no arguments; it returns 0
        // when CUDA is unavailable and does not retain anything.
        let n = unsafe { torch_sys::cuda::atc_cuda_device_count() };
        usize::try_from(n).unwrap_or(0)
    }
}

/// How many CUDA devices libtorch sees; 0 without the `tch` feature.
pub fn cuda_device_count() -> usize {
    #[cfg(feature = "tch")]
    {
        tch_device::cuda_device_count()
    }
    #[cfg(not(feature = "tch"))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices_and_backends() {
        assert_eq!("cpu".parse::<DeviceKind>(), Ok(DeviceKind::Cpu));
        assert_eq!("cuda".parse::<DeviceKind>(), Ok(DeviceKind::Cuda(0)));
        assert_eq!("CUDA:3".parse::<DeviceKind>(), Ok(DeviceKind::Cuda(3)));
        for bad in ["gpu", "cuda:", "cuda:-1", "cuda:x"] {
            let err = bad.parse::<DeviceKind>().unwrap_err();
            assert!(err.to_string().contains("cpu or cuda:N"), "{err}");
        }
        assert_eq!("flex".parse::<Backend>(), Ok(Backend::Flex));
        assert_eq!("tch".parse::<Backend>(), Ok(Backend::Tch));
        assert!("ndarray".parse::<Backend>().is_err());
    }

    #[test]
    fn defaults_and_combinations() {
        let spec = DeviceSpec::new(None, DeviceKind::Cpu).unwrap();
        assert_eq!(spec, DeviceSpec::default());
        assert!(spec.device().is_ok());
        let err = DeviceSpec::new(Some(Backend::Flex), DeviceKind::Cuda(0)).unwrap_err();
        if cfg!(feature = "tch") {
            assert!(err.to_string().contains("CPU only"), "{err}");
            let spec = DeviceSpec::new(None, DeviceKind::Cuda(1)).unwrap();
            assert_eq!(spec.backend, Backend::Tch);
        } else {
            assert!(err.to_string().contains("CPU only"), "{err}");
            let err = DeviceSpec::new(None, DeviceKind::Cuda(0)).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("cuda:0") && msg.contains("--features cohort-worker/tch"));
            let err = DeviceSpec::new(Some(Backend::Tch), DeviceKind::Cpu).unwrap_err();
            assert!(err.to_string().contains("--backend tch"), "{err}");
        }
    }
}
