//! `cohort volume`: inspect NIfTI volumes.
//!
//! `cohort volume info FILE_OR_URL [--json]` prints what the reader found in
//! a volume: shape, voxel spacing, datatype and byte order, NIfTI version,
//! the scaling applied, the affine nibabel would use, and statistics of the
//! scaled values (computed in `f64`). It is the quickest way to check a volume
//! that a job refuses: the reader's error is printed as is.

use std::process::ExitCode;

use anyhow::Context;
use cohort_common::nifti::{self, Nifti};
use serde::Serialize;

#[derive(clap::Subcommand, Debug)]
pub enum VolumeCommand {
    /// Header and value summary of a NIfTI volume (.nii or .nii.gz).
    Info {
        /// A local path or an object-store URL (file://, s3://, gs://, az://, memory://).
        file: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: VolumeCommand) -> anyhow::Result<ExitCode> {
    match command {
        VolumeCommand::Info { file, json } => info(&file, json),
    }
}

#[derive(Serialize)]
struct Info<'a> {
    file: &'a str,
    bytes: usize,
    gzip: bool,
    nifti_version: u8,
    shape: &'a [usize],
    datatype: &'static str,
    numpy_dtype: String,
    endianness: &'static str,
    pixdim: &'a [f64],
    xyzt_units: i32,
    vox_offset: u64,
    extensions: Vec<i32>,
    scl_slope: f64,
    scl_inter: f64,
    qform_code: i32,
    sform_code: i32,
    affine: [[f64; 4]; 4],
    descrip: &'a str,
    stats: nifti::Stats,
}

fn read(file: &str) -> anyhow::Result<Vec<u8>> {
    if !file.contains("://") {
        return std::fs::read(file).with_context(|| format!("cannot read {file}"));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let bytes = runtime
        .block_on(cohort_common::store::read_url(file))
        .with_context(|| format!("cannot read {file}"))?;
    Ok(bytes.to_vec())
}

fn info(file: &str, json: bool) -> anyhow::Result<ExitCode> {
    let bytes = read(file)?;
    let img: Nifti<f64> = nifti::decode_as(&bytes)
        .with_context(|| format!("{file} is not a readable NIfTI volume"))?;
    let h = &img.header;
    let info = Info {
        file,
        bytes: bytes.len(),
        gzip: bytes.starts_with(&[0x1f, 0x8b]),
        nifti_version: h.version.number(),
        shape: &h.dims,
        datatype: h.datatype.name(),
        numpy_dtype: h.datatype.numpy_str(h.big_endian),
        endianness: if h.big_endian { "big" } else { "little" },
        pixdim: &h.pixdim,
        xyzt_units: h.xyzt_units,
        vox_offset: h.vox_offset,
        extensions: h.extensions.iter().map(|e| e.code).collect(),
        scl_slope: h.scl_slope,
        scl_inter: h.scl_inter,
        qform_code: h.qform_code,
        sform_code: h.sform_code,
        affine: h.affine,
        descrip: &h.descrip,
        stats: img.stats(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print!("{}", human(&info));
    }
    Ok(ExitCode::SUCCESS)
}

fn human(i: &Info) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let join = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x}"))
            .collect::<Vec<_>>()
            .join(" x ")
    };
    let shape = i
        .shape
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" x ");
    let _ = writeln!(
        s,
        "file        {} ({} bytes{})",
        i.file,
        i.bytes,
        if i.gzip { ", gzip" } else { "" }
    );
    let _ = writeln!(
        s,
        "format      NIfTI-{}, {}-endian",
        i.nifti_version, i.endianness
    );
    let _ = writeln!(s, "shape       {shape}");
    let _ = writeln!(s, "datatype    {} ({})", i.datatype, i.numpy_dtype);
    let _ = writeln!(s, "pixdim      {}", join(i.pixdim));
    let sign = if i.scl_inter < 0.0 { '-' } else { '+' };
    let _ = writeln!(
        s,
        "scaling     stored * {} {sign} {}",
        i.scl_slope,
        i.scl_inter.abs()
    );
    let _ = writeln!(
        s,
        "vox_offset  {} ({} extension(s))",
        i.vox_offset,
        i.extensions.len()
    );
    let source = if i.sform_code != 0 {
        format!("sform, code {}", i.sform_code)
    } else if i.qform_code != 0 {
        format!("qform, code {}", i.qform_code)
    } else {
        "pixdim only (no sform or qform)".to_string()
    };
    let _ = writeln!(s, "affine      ({source})");
    for row in &i.affine {
        let _ = writeln!(
            s,
            "            [{}]",
            row.iter()
                .map(|x| format!("{x:>10.4}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let st = &i.stats;
    let _ = writeln!(s, "voxels      {} ({} NaN)", st.count, st.nan_count);
    let _ = writeln!(s, "sum         {}", st.sum);
    let _ = writeln!(s, "mean        {}", st.mean);
    let _ = writeln!(s, "min / max   {} / {}", st.min, st.max);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        format!(
            "{}/../../shared/fixtures/nifti/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    #[test]
    fn info_reads_local_paths_and_file_urls() {
        let path = fixture("t2_int16_scaled.nii.gz");
        assert_eq!(info(&path, true).unwrap(), ExitCode::SUCCESS);
        assert_eq!(
            info(&format!("file://{path}"), false).unwrap(),
            ExitCode::SUCCESS
        );
    }

    #[test]
    fn info_names_the_problem_of_a_bad_file() {
        let err = info(&fixture("zero_dim.nii"), false).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("zero_dim.nii") && msg.contains("dim[1] is 0"),
            "{msg}"
        );
    }
}
