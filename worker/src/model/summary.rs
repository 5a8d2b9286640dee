//! The layer table of a DenseNet configuration (what `cohort-worker model summary` prints),
//! computed from the configuration alone: no tensor is built.

use serde::Serialize;

use super::config::{DenseNetConfig, NormKind};

/// One row of the layer table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerRow {
    /// MONAI's module name (`features.denseblock1.denselayer1.layers.conv1`, ...).
    pub name: String,
    /// What the layer is (`Conv3d 7^3/2`, `BatchNorm`, `MaxPool3d 3^3/2`, `Linear`, ...).
    pub kind: String,
    /// Input channels (features for the head).
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Trainable parameters.
    pub params: usize,
}

/// The whole table and its total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The configuration summarised.
    pub config: DenseNetConfig,
    /// Layers in forward order (parameter-free ReLUs omitted).
    pub layers: Vec<LayerRow>,
    /// Sum of `params`; equals MONAI's `sum(p.numel() for p in model.parameters())`.
    pub total_params: usize,
}

/// The layer table of `cfg`.
pub fn summary(cfg: &DenseNetConfig) -> Summary {
    let mut rows = Vec::new();
    let norm = |rows: &mut Vec<LayerRow>, name: String, c: usize| {
        let (kind, params) = match cfg.norm {
            NormKind::Batch => ("BatchNorm3d".to_string(), 2 * c),
            NormKind::Instance => ("InstanceNorm3d".to_string(), 0),
            NormKind::Group { num_groups } => (format!("GroupNorm({num_groups})"), 2 * c),
        };
        rows.push(LayerRow {
            name,
            kind,
            in_channels: c,
            out_channels: c,
            params,
        });
    };
    let conv =
        |rows: &mut Vec<LayerRow>, name: String, k: usize, s: usize, ci: usize, co: usize| {
            let kind = if s == 1 {
                format!("Conv3d {k}^3")
            } else {
                format!("Conv3d {k}^3/{s}")
            };
            rows.push(LayerRow {
                name,
                kind,
                in_channels: ci,
                out_channels: co,
                params: ci * co * k * k * k,
            });
        };
    let pool = |rows: &mut Vec<LayerRow>, name: String, kind: &str, c: usize| {
        rows.push(LayerRow {
            name,
            kind: kind.to_string(),
            in_channels: c,
            out_channels: c,
            params: 0,
        });
    };
    let (k, b) = (cfg.growth_rate, cfg.bn_size * cfg.growth_rate);
    conv(
        &mut rows,
        "features.conv0".into(),
        7,
        2,
        cfg.in_channels,
        cfg.init_features,
    );
    norm(&mut rows, "features.norm0".into(), cfg.init_features);
    pool(
        &mut rows,
        "features.pool0".into(),
        "MaxPool3d 3^3/2",
        cfg.init_features,
    );
    let mut c = cfg.init_features;
    for (i, &layers) in cfg.block_config.iter().enumerate() {
        for j in 0..layers {
            let p = format!("features.denseblock{}.denselayer{}.layers", i + 1, j + 1);
            norm(&mut rows, format!("{p}.norm1"), c);
            conv(&mut rows, format!("{p}.conv1"), 1, 1, c, b);
            norm(&mut rows, format!("{p}.norm2"), b);
            conv(&mut rows, format!("{p}.conv2"), 3, 1, b, k);
            if cfg.dropout > 0.0 {
                pool(&mut rows, format!("{p}.dropout"), "Dropout3d", k);
            }
            c += k;
        }
        if i + 1 == cfg.block_config.len() {
            norm(&mut rows, "features.norm5".into(), c);
        } else {
            let p = format!("features.transition{}", i + 1);
            norm(&mut rows, format!("{p}.norm"), c);
            conv(&mut rows, format!("{p}.conv"), 1, 1, c, c / 2);
            pool(&mut rows, format!("{p}.pool"), "AvgPool3d 2^3/2", c / 2);
            c /= 2;
        }
    }
    pool(
        &mut rows,
        "class_layers.pool".into(),
        "AdaptiveAvgPool3d(1)",
        c,
    );
    rows.push(LayerRow {
        name: "class_layers.out".into(),
        kind: "Linear".into(),
        in_channels: c,
        out_channels: cfg.out_channels,
        params: c * cfg.out_channels + cfg.out_channels,
    });
    let total_params = rows.iter().map(|r| r.params).sum();
    Summary {
        config: cfg.clone(),
        layers: rows,
        total_params,
    }
}

impl Summary {
    /// A fixed-width text table.
    pub fn to_table(&self) -> String {
        let w = self
            .layers
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut s = format!(
            "{:<w$}  {:<22} {:>6} {:>6} {:>10}\n",
            "name", "kind", "in", "out", "params"
        );
        for r in &self.layers {
            s += &format!(
                "{:<w$}  {:<22} {:>6} {:>6} {:>10}\n",
                r.name, r.kind, r.in_channels, r.out_channels, r.params
            );
        }
        s += &format!("total parameters: {}\n", self.total_params);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_match_the_closed_form() {
        for preset in ["densenet121", "densenet169", "densenet201", "small", "tiny"] {
            for c in [1, 3] {
                let cfg = DenseNetConfig::preset(preset, c).unwrap();
                assert_eq!(
                    summary(&cfg).total_params,
                    cfg.expected_num_params(),
                    "{preset}"
                );
            }
        }
        assert_eq!(
            summary(&DenseNetConfig::preset("densenet121", 1).unwrap()).total_params,
            11_243_649
        );
    }
}
