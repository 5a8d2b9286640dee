//! `cohort-worker model summary` and `cohort-worker model import`.
//!
//! `summary` prints a configuration's layer table and parameter count without building a
//! tensor. `import` turns a MONAI `DenseNet` `state_dict` (`.pt` or safetensors) into a
//! Cohort model directory (`model.json` + `weights.bpk`), written into a temporary
//! directory beside the target and renamed into place, so a crash or a failed load never
//! leaves a half-written model where `predict` would find it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use burn::tensor::Device;
use clap::{Args, Subcommand};
use serde::Serialize;

use cohort_worker::model::{self, DenseNetConfig};

use super::print_json;

/// `model ...`
#[derive(Args, Debug)]
pub struct ModelArgs {
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Subcommand, Debug)]
enum ModelCommand {
    /// Print the layer table and the parameter count of a configuration.
    Summary(SummaryArgs),
    /// Import MONAI DenseNet weights (.pt or .safetensors) into a Cohort model directory.
    Import(ImportArgs),
    /// Print every value of a model directory's weights as JSON (parameters and BatchNorm
    /// statistics by module path), to compare two runs.
    Weights(WeightsArgs),
}

/// Where a configuration comes from: a MODEL.json file or a preset.
#[derive(Args, Debug)]
#[group(required = true, multiple = false, id = "config_source")]
struct ConfigSource {
    /// MODEL.json: `{"in_channels", "init_features", "growth_rate", "block_config",
    /// "bn_size", "dropout"}` (optional `out_channels`, `norm`); missing keys take MONAI's
    /// defaults, unknown keys are errors.
    #[arg(long, value_name = "MODEL.json")]
    config: Option<PathBuf>,
    /// A named preset: densenet121, densenet169, densenet201, small, tiny.
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
}

/// `--in-channels`, used with `--preset`.
#[derive(Args, Debug)]
struct InChannels {
    /// Input channels (MRI sequences) for `--preset`.
    #[arg(long, default_value_t = 1, requires = "preset")]
    in_channels: usize,
}

impl ConfigSource {
    fn load(&self, in_channels: usize) -> anyhow::Result<DenseNetConfig> {
        let cfg = match (&self.config, &self.preset) {
            (Some(path), _) => read_config(path)?,
            (None, Some(name)) => DenseNetConfig::preset(name, in_channels)?,
            (None, None) => bail!("give --config MODEL.json or --preset NAME"),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Reads MODEL.json; serde's message names an unknown or mistyped key and its position.
fn read_config(path: &Path) -> anyhow::Result<DenseNetConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the model config {}", path.display()))?;
    let cfg: DenseNetConfig = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a valid model config", path.display()))?;
    cfg.validate()
        .with_context(|| format!("{}: invalid model config", path.display()))?;
    Ok(cfg)
}

#[derive(Args, Debug)]
struct SummaryArgs {
    #[command(flatten)]
    source: ConfigSource,
    #[command(flatten)]
    channels: InChannels,
    /// Print one JSON document (config, layers, total_params) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// The MONAI state_dict: `.pt`/`.pth` (torch.save) or `.safetensors`.
    #[arg(long, value_name = "FILE")]
    monai: PathBuf,
    #[command(flatten)]
    source: ConfigSource,
    #[command(flatten)]
    channels: InChannels,
    /// The model directory to write (must not exist, unless --force).
    #[arg(long, value_name = "MODEL_DIR")]
    out: PathBuf,
    /// Replace an existing model directory.
    #[arg(long)]
    force: bool,
    /// Print a JSON report instead of a sentence.
    #[arg(long)]
    json: bool,
}

/// Runs `model ...`.
pub fn run(args: ModelArgs) -> anyhow::Result<()> {
    match args.command {
        ModelCommand::Summary(a) => summary(a),
        ModelCommand::Import(a) => import(a),
        ModelCommand::Weights(a) => weights(a),
    }
}

#[derive(Args, Debug)]
struct WeightsArgs {
    /// The model directory (`model.json` + `weights.bpk`).
    #[arg(long)]
    model: PathBuf,
}

#[derive(Serialize)]
struct Tensor {
    path: String,
    values: Vec<f32>,
}

fn weights(args: WeightsArgs) -> anyhow::Result<()> {
    use burn::module::{Module, ModuleVisitor, Param};
    struct Collect {
        path: Vec<String>,
        out: Vec<Tensor>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<burn::tensor::Tensor<D>>) {
            let data = param.val().into_data().convert::<f32>();
            self.out.push(Tensor {
                path: self.path.join("."),
                values: data
                    .as_slice::<f32>()
                    .map(<[f32]>::to_vec)
                    .unwrap_or_default(),
            });
        }
    }
    let (net, _) = model::load_model(&args.model, &Device::flex())
        .with_context(|| format!("loading {}", args.model.display()))?;
    let mut collect = Collect {
        path: Vec::new(),
        out: Vec::new(),
    };
    net.visit(&mut collect);
    print_json(&serde_json::json!({ "tensors": collect.out }))
}

fn summary(args: SummaryArgs) -> anyhow::Result<()> {
    let cfg = args.source.load(args.channels.in_channels)?;
    let s = model::summary(&cfg);
    if args.json {
        print_json(&s)
    } else {
        print!("{}", s.to_table());
        Ok(())
    }
}

/// What `model import --json` prints.
#[derive(Serialize)]
struct ImportReport {
    out: PathBuf,
    source: PathBuf,
    config: DenseNetConfig,
    total_params: usize,
    tensors_applied: usize,
}

fn import(args: ImportArgs) -> anyhow::Result<()> {
    let cfg = args.source.load(args.channels.in_channels)?;
    std::fs::metadata(&args.monai)
        .with_context(|| format!("reading MONAI weights {}", args.monai.display()))?;
    if args.out.exists() && !args.force {
        bail!(
            "{} exists; choose another --out or pass --force to replace it",
            args.out.display()
        );
    }
    let device = Device::flex();
    let mut net = model::DenseNet3d::new(&cfg, &device)?;
    let applied = model::load_monai_into(&mut net, &cfg, &args.monai)?;
    tracing::info!(
        applied = applied.applied.len(),
        skipped = applied.unused.len(),
        "loaded {}",
        args.monai.display()
    );
    write_atomically(&args.out, |tmp| Ok(model::save_model(&net, &cfg, tmp)?))?;
    let report = ImportReport {
        out: args.out.clone(),
        source: args.monai.clone(),
        total_params: net.num_trainable_params(),
        tensors_applied: applied.applied.len(),
        config: cfg,
    };
    if args.json {
        print_json(&report)
    } else {
        println!(
            "wrote {} ({} parameters, {} tensors from {})",
            report.out.display(),
            report.total_params,
            report.tensors_applied,
            report.source.display()
        );
        Ok(())
    }
}

/// Fills a fresh temporary directory beside `target` with `fill`, then renames it to
/// `target` (replacing an existing directory: it is first moved aside, then deleted). A
/// rename within one directory is atomic, so `target` is at every moment either absent,
/// the old model, or the complete new one; on error the temporary directory is removed.
fn write_atomically(
    target: &Path,
    fill: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = target
        .file_name()
        .with_context(|| format!("{}: not a directory name", target.display()))?
        .to_string_lossy()
        .into_owned();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    fill(tmp.path())?;
    let old = if target.exists() {
        let aside = tempfile::Builder::new()
            .prefix(&format!(".{name}.old-"))
            .tempdir_in(&parent)?;
        // Keep a path to move the old model to; the empty dir is replaced by the rename.
        let aside = aside.keep();
        std::fs::remove_dir(&aside)?;
        std::fs::rename(target, &aside)
            .with_context(|| format!("moving the old {} aside", target.display()))?;
        Some(aside)
    } else {
        None
    };
    let tmp = tmp.keep();
    if let Err(e) = std::fs::rename(&tmp, target) {
        // Put the old model back; drop the new one.
        if let Some(old) = &old {
            let _ = std::fs::rename(old, target);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e).with_context(|| format!("renaming into {}", target.display()));
    }
    if let Some(old) = old {
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("removing the replaced model {}", old.display()))?;
    }
    Ok(())
}
