//! Rendering MRI-like head volumes with a nasopharyngeal tumour.
//!
//! The anatomy is deliberately simple but has what makes the learning problem
//! honest: a head-shaped ellipsoid with scalp fat, skull, brain and lower-face
//! soft tissue, an airway beside the nasopharynx, a smooth bias field and
//! Rician noise, so the tumour is not the only structure and not trivially
//! segmented. The tumour's size, contrast enhancement and texture come from
//! the patient's [`PatientTruth`] and are what drive the hazard.
//!
//! Each sequence has its own contrast (intensities roughly like real T1, T2
//! and contrast-enhanced T1 in arbitrary units). Unknown sequence names get a
//! T1-like contrast with a name-dependent twist, so any list of sequences
//! renders.

use super::model::PatientTruth;
use crate::rng::Rng;

/// The field of view of every synthetic volume, mm along each axis.
pub const FIELD_OF_VIEW_MM: f64 = 160.0;

#[derive(Clone, Copy)]
struct Contrast {
    fat: f64,
    bone: f64,
    brain: f64,
    soft: f64,
    tumour: f64,
    /// Extra tumour signal per unit of enhancement (T1c only).
    enhancement: f64,
    necrosis: f64,
}

fn contrast(sequence: &str) -> Contrast {
    match sequence.to_ascii_lowercase().as_str() {
        "t2" | "t2w" => Contrast {
            fat: 650.0,
            bone: 90.0,
            brain: 760.0,
            soft: 420.0,
            tumour: 880.0,
            enhancement: 0.0,
            necrosis: 1250.0,
        },
        "t1c" | "t1ce" | "t1gd" | "t1+c" => Contrast {
            fat: 950.0,
            bone: 120.0,
            brain: 540.0,
            soft: 480.0,
            tumour: 820.0,
            enhancement: 160.0,
            necrosis: 430.0,
        },
        other => {
            // T1-like; a small name-dependent shift keeps unknown sequences distinct.
            let twist = (other.bytes().map(u32::from).sum::<u32>() % 7) as f64 * 15.0;
            Contrast {
                fat: 950.0 - twist,
                bone: 120.0,
                brain: 520.0 + twist,
                soft: 430.0,
                tumour: 470.0 + twist,
                enhancement: 0.0,
                necrosis: 380.0,
            }
        }
    }
}

/// A smooth random field: a sum of plane waves, unit variance.
struct SmoothField {
    waves: Vec<([f64; 3], f64)>,
}

impl SmoothField {
    fn new(rng: &mut Rng, min_wavelength_mm: f64, max_wavelength_mm: f64) -> Self {
        let waves = (0..6)
            .map(|_| {
                let (x, y, z) = (rng.normal(), rng.normal(), rng.normal());
                let norm = (x * x + y * y + z * z).sqrt().max(1e-9);
                let wavelength = rng.uniform_range(min_wavelength_mm, max_wavelength_mm);
                let k = std::f64::consts::TAU / wavelength / norm;
                (
                    [x * k, y * k, z * k],
                    rng.uniform_range(0.0, std::f64::consts::TAU),
                )
            })
            .collect();
        SmoothField { waves }
    }

    fn at(&self, p: [f64; 3]) -> f64 {
        let s: f64 = self
            .waves
            .iter()
            .map(|(k, phase)| (k[0] * p[0] + k[1] * p[1] + k[2] * p[2] + phase).cos())
            .sum();
        s * (2.0 / self.waves.len() as f64).sqrt()
    }
}

/// The tumour's geometry for one patient (shared by all sequences).
struct Tumour {
    centre: [f64; 3],
    radii: [f64; 3],
    lobes: SmoothField,
    texture: SmoothField,
    texture_amplitude: f64,
    necrotic: bool,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Tumour {
    fn new(truth: &PatientTruth, rng: &mut Rng) -> Self {
        let radius = (3.0 * truth.tumour_volume_ml * 1000.0 / (4.0 * std::f64::consts::PI)).cbrt();
        let stretch = [
            rng.uniform_range(0.8, 1.25),
            rng.uniform_range(0.8, 1.25),
            rng.uniform_range(0.8, 1.25),
        ];
        let g = (stretch[0] * stretch[1] * stretch[2]).cbrt();
        Tumour {
            centre: [
                4.0 * rng.normal(),
                10.0 + 4.0 * rng.normal(),
                -30.0 + 4.0 * rng.normal(),
            ],
            radii: stretch.map(|s| radius * s / g),
            lobes: SmoothField::new(rng, 15.0, 40.0),
            texture: SmoothField::new(rng, 7.0, 16.0),
            texture_amplitude: 0.06 + 0.26 * sigmoid(1.5 * truth.heterogeneity),
            necrotic: truth.heterogeneity > 0.8 && radius > 12.0,
        }
    }

    /// Normalised distance from the centre (1 at the boundary), with lobulation.
    fn distance(&self, p: [f64; 3]) -> f64 {
        let d = [
            (p[0] - self.centre[0]) / self.radii[0],
            (p[1] - self.centre[1]) / self.radii[1],
            (p[2] - self.centre[2]) / self.radii[2],
        ];
        (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt() * (1.0 + 0.12 * self.lobes.at(p))
    }
}

/// Renders one patient's volumes, one `Vec<f32>` per sequence, NIfTI order
/// (i fastest), on a grid of `dims` voxels spanning [`FIELD_OF_VIEW_MM`].
pub fn render_patient(
    truth: &PatientTruth,
    sequences: &[String],
    dims: [usize; 3],
    rng: &mut Rng,
) -> Vec<Vec<f32>> {
    let tumour = Tumour::new(truth, rng);
    let brain_texture = SmoothField::new(rng, 20.0, 60.0);
    let spacing = dims.map(|n| FIELD_OF_VIEW_MM / n as f64);
    let voxel = spacing.iter().copied().fold(f64::INFINITY, f64::min);
    let head = [
        70.0 * rng.uniform_range(0.95, 1.05),
        78.0 * rng.uniform_range(0.95, 1.05),
        72.0,
    ];
    let count = dims[0] * dims[1] * dims[2];
    let mut out = Vec::with_capacity(sequences.len());
    for sequence in sequences {
        let c = contrast(sequence);
        let bias = [rng.normal(), rng.normal(), rng.normal()].map(|x| 0.08 * x / 70.0);
        let sigma = 18.0;
        let mut data = Vec::with_capacity(count);
        for k in 0..dims[2] {
            for j in 0..dims[1] {
                for i in 0..dims[0] {
                    let p = [
                        (i as f64 - (dims[0] as f64 - 1.0) / 2.0) * spacing[0],
                        (j as f64 - (dims[1] as f64 - 1.0) / 2.0) * spacing[1],
                        (k as f64 - (dims[2] as f64 - 1.0) / 2.0) * spacing[2],
                    ];
                    let signal = anatomy(p, head, &c, &brain_texture)
                        * (1.0 + bias[0] * p[0] + bias[1] * p[1] + bias[2] * p[2]);
                    let signal = blend_tumour(signal, p, &tumour, truth, &c, voxel);
                    // Rician noise: magnitude of a complex signal with Gaussian noise.
                    let re = signal + sigma * rng.normal();
                    let im = sigma * rng.normal();
                    data.push((re * re + im * im).sqrt() as f32);
                }
            }
        }
        out.push(data);
    }
    out
}

fn anatomy(p: [f64; 3], head: [f64; 3], c: &Contrast, brain_texture: &SmoothField) -> f64 {
    let r = ((p[0] / head[0]).powi(2) + (p[1] / head[1]).powi(2) + (p[2] / head[2]).powi(2)).sqrt();
    if r > 1.0 {
        return 0.0;
    }
    if r > 0.94 {
        return c.fat;
    }
    if r > 0.88 && p[2] > -20.0 {
        return c.bone;
    }
    // Airway: a dark tube in front of the nasopharynx.
    let airway = ((p[0] / 6.0).powi(2) + ((p[1] - 26.0) / 5.0).powi(2)).sqrt();
    if airway < 1.0 && (-60.0..-12.0).contains(&p[2]) {
        return 0.0;
    }
    if p[2] > -15.0 {
        c.brain * (1.0 + 0.06 * brain_texture.at(p))
    } else {
        // Lower face: soft tissue with fat planes.
        let plane = (p[0].abs() - 28.0).abs() < 3.0 || (p[1] + 20.0).abs() < 2.5;
        if plane { 0.7 * c.fat } else { c.soft }
    }
}

fn blend_tumour(
    background: f64,
    p: [f64; 3],
    t: &Tumour,
    truth: &PatientTruth,
    c: &Contrast,
    voxel: f64,
) -> f64 {
    let d = t.distance(p);
    let mean_radius = (t.radii[0] + t.radii[1] + t.radii[2]) / 3.0;
    // Partial-volume weight over about one voxel at the boundary.
    let w = (0.5 - (d - 1.0) * mean_radius / voxel).clamp(0.0, 1.0);
    if w == 0.0 {
        return background;
    }
    let mut value = c.tumour + c.enhancement * (1.0 + 1.2 * truth.enhancement).max(-1.5);
    if t.necrotic && d < 0.45 {
        value = c.necrosis;
    }
    value *= 1.0 + t.texture_amplitude * t.texture.at(p);
    w * value.max(0.0) + (1.0 - w) * background
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::model::draw_patient;

    fn mean_in_box(data: &[f32], dims: [usize; 3], centre_mm: [f64; 3], half_mm: f64) -> f64 {
        let spacing = dims.map(|n| FIELD_OF_VIEW_MM / n as f64);
        let (mut s, mut n) = (0.0, 0);
        for k in 0..dims[2] {
            for j in 0..dims[1] {
                for i in 0..dims[0] {
                    let p = [
                        (i as f64 - (dims[0] as f64 - 1.0) / 2.0) * spacing[0],
                        (j as f64 - (dims[1] as f64 - 1.0) / 2.0) * spacing[1],
                        (k as f64 - (dims[2] as f64 - 1.0) / 2.0) * spacing[2],
                    ];
                    if (0..3).all(|a| (p[a] - centre_mm[a]).abs() <= half_mm) {
                        s += f64::from(data[(k * dims[1] + j) * dims[0] + i]);
                        n += 1;
                    }
                }
            }
        }
        s / n as f64
    }

    #[test]
    fn tumour_is_visible_and_bigger_tumours_are_bigger() {
        let mut truth = draw_patient(&mut Rng::seed_from_u64(5));
        truth.tumour_volume_ml = 40.0;
        truth.heterogeneity = 0.0;
        let dims = [48, 48, 48];
        let seqs = vec!["t2".to_string()];
        let big = render_patient(&truth, &seqs, dims, &mut Rng::seed_from_u64(1));
        truth.tumour_volume_ml = 4.0;
        let small = render_patient(&truth, &seqs, dims, &mut Rng::seed_from_u64(1));
        // Tumour (T2-bright) near the nasopharynx; air outside the head is dark.
        let outside = mean_in_box(&big[0], dims, [0.0, 0.0, 76.0], 3.0);
        assert!(outside < 60.0, "air {outside}");
        let near_big = mean_in_box(&big[0], dims, [0.0, 10.0, -30.0], 18.0);
        let near_small = mean_in_box(&small[0], dims, [0.0, 10.0, -30.0], 18.0);
        assert!(near_big > near_small + 100.0, "{near_big} vs {near_small}");
    }
}
