//! The figures: valid SVG and PNG, the expected size, labels present as SVG
//! text, identical bytes on every run, and errors (not panics) on bad input.
//! The inputs are R's own numbers (survfit and coxph results from the
//! reference JSON), so the figures show real curves.
//!
//! Set `COHORT_PLOT_OUT=/some/dir` to also write the figures there for a look.

use cohort_common::plot::calibration::{CalibrationPlot, CalibrationPoint, CalibrationSeries};
use cohort_common::plot::forest::{ForestPlot, ForestRow, HrCi};
use cohort_common::plot::km::{KmCurveSeries, KmPlot};
use cohort_common::plot::nomogram::{NomogramAxis, NomogramPlot, NomogramTick};
use cohort_common::plot::{Figure, PlotError, format_p, pretty_breaks, render_png, render_svg};
use serde_json::Value;
use std::path::PathBuf;

fn reference(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/survival")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN))
        .collect()
}

/// A curve from R's `survfit` output in the reference JSON.
fn curve(json: &Value, stratum: &str, label: &str) -> KmCurveSeries {
    let s = &json["km"]["by_two_group"]["strata"][stratum];
    let time = nums(&s["time"]);
    let censored = nums(&s["n_censor"]);
    KmCurveSeries {
        label: label.into(),
        censor_times: time
            .iter()
            .zip(&censored)
            .filter(|(_, c)| **c > 0.0)
            .map(|(t, _)| *t)
            .collect(),
        surv: nums(&s["surv"]),
        lower: nums(&s["lower"]),
        upper: nums(&s["upper"]),
        at_risk: nums(&s["n_risk"]).iter().map(|&n| n as usize).collect(),
        time,
    }
}

fn rossi_km() -> KmPlot {
    let json = reference("rossi");
    KmPlot {
        curves: vec![
            curve(&json, "0", "No financial aid"),
            curve(&json, "1", "Financial aid"),
        ],
        x_label: "Time since release (weeks)".into(),
        y_label: "Arrest-free probability".into(),
        x_breaks: Some(vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0]),
        x_max: Some(52.0),
        p_value: json["logrank"]["two_group"]["p"].as_f64(),
        annotations: vec!["HR 0.68 (95% CI 0.47\u{2013}1.00)".into()],
        ..KmPlot::default()
    }
}

fn rossi_forest() -> ForestPlot {
    let json = reference("rossi");
    let terms = &json["cox"]["efron"]["terms"];
    let mut rows = vec![ForestRow {
        label: "Multivariable Cox model".into(),
        ..ForestRow::default()
    }];
    for name in ["fin", "age", "race", "wexp", "mar", "paro", "prio"] {
        let t = &terms[name];
        rows.push(ForestRow {
            label: name.into(),
            indent: 1,
            n: Some("432".into()),
            hr: Some(HrCi {
                hr: t["hr"].as_f64().unwrap(),
                lower: t["ci_lower"].as_f64().unwrap(),
                upper: t["ci_upper"].as_f64().unwrap(),
            }),
            p: t["p"].as_f64(),
        });
    }
    ForestPlot {
        rows,
        label_header: "Covariate".into(),
        left_caption: Some("Lower risk".into()),
        right_caption: Some("Higher risk".into()),
        footnote: Some("Efron ties; 114 arrests among 432 released prisoners".into()),
        ..ForestPlot::default()
    }
}

fn tick(position: f64, label: &str) -> NomogramTick {
    NomogramTick {
        position,
        label: label.into(),
    }
}

fn nomogram() -> NomogramPlot {
    NomogramPlot {
        title: Some("Nomogram for 3-year disease-free survival".into()),
        factors: vec![
            NomogramAxis {
                label: "Risk score".into(),
                ticks: (0..=10)
                    .map(|k| tick(k as f64 * 10.0, &format!("{:.1}", -1.0 + k as f64 * 0.2)))
                    .collect(),
            },
            NomogramAxis {
                label: "T stage".into(),
                ticks: vec![
                    tick(0.0, "T1"),
                    tick(12.0, "T2"),
                    tick(25.0, "T3"),
                    tick(41.0, "T4"),
                ],
            },
            NomogramAxis {
                label: "N stage".into(),
                ticks: vec![
                    tick(0.0, "N0"),
                    tick(18.0, "N1"),
                    tick(30.0, "N2"),
                    tick(52.0, "N3"),
                ],
            },
            NomogramAxis {
                label: "EBV DNA (copies/mL)".into(),
                ticks: vec![tick(0.0, "<4000"), tick(33.0, "\u{2265}4000")],
            },
        ],
        total_points: (0.0, 220.0),
        outcomes: vec![
            NomogramAxis {
                label: "3-year DFS".into(),
                ticks: [
                    (20.0, "0.95"),
                    (62.0, "0.9"),
                    (105.0, "0.8"),
                    (133.0, "0.7"),
                    (152.0, "0.6"),
                    (168.0, "0.5"),
                    (183.0, "0.4"),
                    (199.0, "0.3"),
                ]
                .iter()
                .map(|&(p, l)| tick(p, l))
                .collect(),
            },
            NomogramAxis {
                label: "5-year DFS".into(),
                ticks: [
                    (30.0, "0.9"),
                    (75.0, "0.8"),
                    (103.0, "0.7"),
                    (122.0, "0.6"),
                    (139.0, "0.5"),
                    (154.0, "0.4"),
                    (170.0, "0.3"),
                    (190.0, "0.2"),
                ]
                .iter()
                .map(|&(p, l)| tick(p, l))
                .collect(),
            },
        ],
        ..NomogramPlot::default()
    }
}

fn calibration() -> CalibrationPlot {
    let pt = |p: f64, o: f64, h: f64| CalibrationPoint {
        predicted: p,
        observed: o,
        lower: o - h,
        upper: (o + h).min(1.0),
    };
    CalibrationPlot {
        series: vec![
            CalibrationSeries {
                label: "Training cohort".into(),
                points: vec![
                    pt(0.52, 0.49, 0.07),
                    pt(0.68, 0.71, 0.06),
                    pt(0.79, 0.77, 0.05),
                    pt(0.88, 0.90, 0.04),
                    pt(0.95, 0.96, 0.03),
                ],
            },
            CalibrationSeries {
                label: "Validation cohort".into(),
                points: vec![
                    pt(0.55, 0.47, 0.10),
                    pt(0.70, 0.74, 0.09),
                    pt(0.82, 0.80, 0.07),
                    pt(0.93, 0.95, 0.04),
                ],
            },
        ],
        x_label: "Nomogram-predicted 3-year DFS".into(),
        y_label: "Observed 3-year DFS (Kaplan-Meier)".into(),
        ..CalibrationPlot::default()
    }
}

fn maybe_write(name: &str, bytes: &[u8]) {
    if let Ok(dir) = std::env::var("COHORT_PLOT_OUT") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(PathBuf::from(dir).join(name), bytes).unwrap();
    }
}

/// SVG checks: well-formed enough, the declared size, the texts present,
/// and identical output twice.
fn check_svg<F: Figure>(fig: &F, name: &str, texts: &[&str]) -> String {
    let svg = render_svg(fig).unwrap();
    assert!(
        svg.starts_with("<svg"),
        "{name}: {}",
        &svg[..40.min(svg.len())]
    );
    assert!(svg.trim_end().ends_with("</svg>"));
    let (w, h) = fig.size();
    assert!(svg.contains(&format!("width=\"{w}\"")) && svg.contains(&format!("height=\"{h}\"")));
    for t in texts {
        let escaped = t
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(
            svg.contains(&format!(">\n{escaped}\n</text>")),
            "{name}: no text {t:?}"
        );
    }
    assert_eq!(
        svg,
        render_svg(fig).unwrap(),
        "{name}: SVG not deterministic"
    );
    maybe_write(&format!("{name}.svg"), svg.as_bytes());
    svg
}

/// PNG checks: signature, decodable, the size at the scale, real ink on the
/// page, identical bytes twice.
fn check_png<F: Figure>(fig: &F, name: &str, scale: f64, colour: bool) {
    let png_bytes = render_png(fig, scale).unwrap();
    assert_eq!(&png_bytes[..8], b"\x89PNG\r\n\x1a\n");
    let decoder = png::Decoder::new(std::io::Cursor::new(&png_bytes[..]));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = fig.size();
    assert_eq!(info.width, (f64::from(w) * scale).round() as u32);
    assert_eq!(info.height, (f64::from(h) * scale).round() as u32);
    let px = &buf[..info.buffer_size()];
    let dark = px.chunks(3).filter(|p| p.iter().all(|&v| v < 100)).count();
    let coloured = px.chunks(3).filter(|p| p[0].abs_diff(p[2]) > 60).count();
    let total = px.len() / 3;
    assert!(
        dark > total / 400,
        "{name}: only {dark} dark pixels of {total}"
    );
    assert!(dark < total / 4, "{name}: {dark} dark pixels of {total}");
    assert_eq!(coloured > 0, colour, "{name}: {coloured} coloured pixels");
    assert_eq!(
        png_bytes,
        render_png(fig, scale).unwrap(),
        "{name}: PNG not deterministic"
    );
    maybe_write(&format!("{name}.png"), &png_bytes);
}

#[test]
fn km_figure() {
    let km = rossi_km();
    let svg = check_svg(
        &km,
        "km_rossi",
        &[
            "No financial aid",
            "Financial aid",
            "Number at risk",
            "Log-rank p = 0.050",
            "Time since release (weeks)",
            "Arrest-free probability",
            "216",
            "0.8",
        ],
    );
    // 2 curves + 2 bands; the at-risk table has a row per curve and a column
    // per break: 216 at risk in both groups at week 0.
    assert_eq!(svg.matches(">\n216\n</text>").count(), 2);
    assert!(svg.matches("<polygon").count() >= 2);
    check_png(&km, "km_rossi", 2.0, true);
    // Without the table and CI the figure is shorter and has no band.
    let bare = KmPlot {
        risk_table: false,
        show_ci: false,
        ..rossi_km()
    };
    assert!(bare.size().1 < km.size().1);
    let svg = render_svg(&bare).unwrap();
    assert!(!svg.contains("Number at risk") && !svg.contains("<polygon"));
}

#[test]
fn km_many_curves_wrap_the_legend() {
    let json = reference("rossi");
    let mut km = rossi_km();
    let one_row = km.size().1;
    km.curves = (0..6)
        .map(|k| {
            curve(
                &json,
                if k % 2 == 0 { "0" } else { "1" },
                &format!("A rather long group label {k}"),
            )
        })
        .collect();
    // Six long labels need more than one legend row, and six table rows.
    assert!(km.size().1 > one_row + 4 * 21);
    let svg = check_svg(&km, "km_six", &["A rather long group label 5"]);
    assert_eq!(svg.matches(">\n216\n</text>").count(), 6);
    // Breaks beyond the axis end are dropped, not drawn outside the panel.
    km.x_breaks = Some(vec![0.0, 20.0, 40.0, 60.0, 80.0]);
    let svg = render_svg(&km).unwrap();
    assert!(!svg.contains(">\n60\n</text>") && svg.contains(">\n40\n</text>"));
    check_png(&km, "km_six", 1.0, true);
}

#[test]
fn km_at_risk_and_steps() {
    let c = KmCurveSeries {
        label: "a".into(),
        time: vec![2.0, 5.0, 9.0],
        surv: vec![0.8, 0.5, 0.5],
        lower: vec![0.6, 0.3, f64::NAN],
        upper: vec![0.95, 0.7, f64::NAN],
        censor_times: vec![9.0],
        at_risk: vec![10, 6, 2],
    };
    assert_eq!(c.surv_at(0.0), 1.0);
    assert_eq!(c.surv_at(2.0), 0.8);
    assert_eq!(c.surv_at(4.9), 0.8);
    assert_eq!(c.surv_at(100.0), 0.5);
    assert_eq!(c.at_risk_at(0.0), 10);
    assert_eq!(c.at_risk_at(2.0), 10);
    assert_eq!(c.at_risk_at(3.0), 6);
    assert_eq!(c.at_risk_at(9.5), 0);
    // A NaN confidence limit only ends the band; the figure still renders.
    let km = KmPlot {
        curves: vec![c],
        ..KmPlot::default()
    };
    render_svg(&km).unwrap();
}

#[test]
fn forest_figure() {
    let f = rossi_forest();
    let svg = check_svg(
        &f,
        "forest_rossi",
        &[
            "Covariate",
            "HR (95% CI)",
            "fin",
            "prio",
            "0.68 (0.47\u{2013}1.00)",
            "1.10 (1.04\u{2013}1.16)",
            "0.047",
            "Hazard ratio (95% CI)",
        ],
    );
    // One filled square per covariate.
    assert!(svg.matches("<rect").count() >= 7);
    check_png(&f, "forest_rossi", 2.0, true);
}

#[test]
fn nomogram_figure() {
    let n = nomogram();
    check_svg(
        &n,
        "nomogram",
        &[
            "Points",
            "Total Points",
            "T stage",
            "N3",
            "3-year DFS",
            "5-year DFS",
            "0.95",
            "100",
            "200",
        ],
    );
    check_png(&n, "nomogram", 2.0, false);
}

#[test]
fn calibration_figure() {
    let c = calibration();
    check_svg(
        &c,
        "calibration",
        &[
            "Training cohort",
            "Validation cohort",
            "Nomogram-predicted 3-year DFS",
            "0.4",
            "1.0",
        ],
    );
    check_png(&c, "calibration", 2.0, true);
}

#[test]
fn bad_input_is_an_error() {
    let mut km = rossi_km();
    km.curves[0].surv.pop();
    assert!(matches!(render_svg(&km), Err(PlotError::Invalid(_))));
    let mut km = rossi_km();
    km.curves[1].time[3] = f64::NAN;
    assert!(matches!(render_png(&km, 1.0), Err(PlotError::Invalid(_))));
    assert!(matches!(
        render_svg(&KmPlot::default()),
        Err(PlotError::Invalid(_))
    ));
    assert!(matches!(
        render_png(&rossi_km(), 100.0),
        Err(PlotError::Invalid(_))
    ));
    let huge = KmPlot {
        width: 200_000,
        ..rossi_km()
    };
    assert!(matches!(render_png(&huge, 1.0), Err(PlotError::Invalid(_))));
    let mut f = rossi_forest();
    f.rows[1].hr = Some(HrCi {
        hr: 2.0,
        lower: 3.0,
        upper: 4.0,
    });
    assert!(matches!(render_svg(&f), Err(PlotError::Invalid(_))));
    let mut n = nomogram();
    n.total_points = (10.0, 10.0);
    assert!(matches!(render_svg(&n), Err(PlotError::Invalid(_))));
    assert!(matches!(
        render_svg(&CalibrationPlot::default()),
        Err(PlotError::Invalid(_))
    ));
}

/// The conversion from the engine's Kaplan-Meier curves gives the figure R's
/// survfit numbers.
#[test]
fn km_series_from_engine_curves() {
    use cohort_common::survival::km::kaplan_meier_by;
    use cohort_common::survival::table::Table;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/survival");
    let table = Table::read(&dir.join("rossi.csv")).unwrap();
    let surv = table.surv("time", "event").unwrap();
    let groups = table.groups("fin").unwrap();
    let curves = kaplan_meier_by(&surv, &groups.codes, 2, 0.95).unwrap();
    let json = reference("rossi");
    for (k, stratum) in ["0", "1"].iter().enumerate() {
        let got = KmCurveSeries::from_curve("x", curves[k].as_ref().unwrap());
        let want = curve(&json, stratum, "x");
        assert_eq!(got.time, want.time);
        assert_eq!(got.at_risk, want.at_risk);
        assert_eq!(got.censor_times, want.censor_times);
        for (a, b) in got.surv.iter().zip(&want.surv) {
            assert!((a - b).abs() < 1e-12);
        }
        for (a, b) in got.lower.iter().zip(&want.lower) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}

#[test]
fn formats_from_file_names() {
    use cohort_common::plot::{Format, render};
    use std::path::Path;
    assert_eq!(
        Format::from_path(Path::new("a/km.svg")).unwrap(),
        Format::Svg
    );
    assert_eq!(Format::from_path(Path::new("KM.PNG")).unwrap(), Format::Png);
    assert!(Format::from_path(Path::new("km.pdf")).is_err());
    assert!(Format::from_path(Path::new("km")).is_err());
    let km = rossi_km();
    assert_eq!(
        render(&km, Format::Svg).unwrap(),
        render_svg(&km).unwrap().into_bytes()
    );
    assert_eq!(
        render(&km, Format::Png).unwrap(),
        render_png(&km, 2.0).unwrap()
    );
}

#[test]
fn helpers() {
    assert_eq!(format_p(0.0501161), "p = 0.050");
    assert_eq!(format_p(0.22), "p = 0.22");
    assert_eq!(format_p(0.0013), "p = 0.0013");
    assert_eq!(format_p(1e-7), "p < 0.001");
    assert_eq!(
        pretty_breaks(0.0, 52.0, 6),
        vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    );
    assert_eq!(
        pretty_breaks(0.0, 1.0, 5),
        vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    );
}
