//! The worker's data pipeline on a real synthetic cohort in a memory store:
//! loading, the content-addressed cache, prefetch order and error messages.

use std::sync::Arc;

use cohort_common::cohort::manifest;
use cohort_common::nifti::{self, Encoding, Volume};
use cohort_common::preprocess::{Foreground, Geometry, Pipeline};
use cohort_common::store::Store;
use cohort_common::synth::{SynthConfig, write_cohort};
use cohort_worker::data::{VolumeCache, VolumeSource, prefetch};

async fn cohort(name: &str, patients: usize) -> (Store, Arc<cohort_common::cohort::Manifest>) {
    let store = Store::open(&format!("memory://{name}/cohort")).unwrap();
    let config = SynthConfig {
        patients,
        shape: [12, 12, 10],
        ..SynthConfig::default()
    };
    write_cohort(&store, &config, &|_| {}).await.unwrap();
    let bytes = store.get("clinical.csv").await.unwrap();
    let parsed = manifest::parse(&bytes, "clinical.csv");
    assert!(!parsed.problems.has_errors(), "{}", parsed.problems);
    (store, Arc::new(parsed.manifest))
}

fn pipeline() -> Pipeline {
    Pipeline {
        spacing: Some([16.0; 3]),
        resize: None,
        normalize: Some(Foreground::NonZero),
        shape: Some([8, 8, 8]),
        pad_value: 0.0,
    }
}

fn source(
    store: &Store,
    manifest: &Arc<cohort_common::cohort::Manifest>,
    cache: Option<VolumeCache>,
) -> VolumeSource {
    VolumeSource {
        store: store.clone(),
        manifest: manifest.clone(),
        pipeline: pipeline(),
        geometry: Geometry::RequireSame { tolerance_mm: 1e-3 },
        cache,
    }
}

fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() { count_files(&p) } else { 1 }
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_are_cached_by_content_and_never_stale() {
    let (store, manifest) = cohort("pipeline-cache", 4).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = VolumeCache::open(dir.path()).unwrap();
    let cached = source(&store, &manifest, Some(cache.clone()));
    let uncached = source(&store, &manifest, None);

    let first = cached.load(0).await.unwrap();
    assert_eq!(first.shape, [3, 8, 8, 8]);
    // z-scored (raw intensities are in the hundreds), finite, not constant.
    let max = first.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(
        max.is_finite() && max < 10.0 && max > 0.5,
        "max |value| {max}"
    );
    assert_eq!(
        first,
        uncached.load(0).await.unwrap(),
        "the cache changes nothing"
    );
    assert_eq!(count_files(&dir.path().join("entries")), 1);
    assert_eq!(count_files(&dir.path().join("index")), 3);
    // Served again (from the entry) with identical values.
    assert_eq!(cached.load(0).await.unwrap(), first);
    assert_eq!(count_files(&dir.path().join("entries")), 1);

    // Replace patient 0's t1 with patient 1's: the cache must not serve the old tensor.
    let p0 = &manifest.patients[0];
    let p1 = &manifest.patients[1];
    let other = store.get(&p1.volumes[0]).await.unwrap();
    store.put(&p0.volumes[0], other).await.unwrap();
    let changed = cached.load(0).await.unwrap();
    let second = uncached.load(1).await.unwrap();
    let channel = 8 * 8 * 8;
    assert_eq!(&changed.data[..channel], &second.data[..channel]);
    assert_eq!(&changed.data[channel..], &first.data[channel..]);
    assert_eq!(count_files(&dir.path().join("entries")), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_yields_the_given_order() {
    let (store, manifest) = cohort("pipeline-prefetch", 5).await;
    let src = Arc::new(source(&store, &manifest, None));
    let order = vec![3, 1, 4, 0, 2, 3];
    let direct: Vec<_> = {
        let mut v = Vec::new();
        for &i in &order {
            v.push(src.load(i).await.unwrap());
        }
        v
    };
    let got: Vec<_> =
        tokio::task::spawn_blocking(move || prefetch(src, order, 2).collect::<Vec<_>>())
            .await
            .unwrap();
    let indices: Vec<usize> = got.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, vec![3, 1, 4, 0, 2, 3]);
    for ((_, r), d) in got.into_iter().zip(direct) {
        assert_eq!(r.unwrap(), d);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_volumes_name_the_patient_sequence_and_file() {
    let (store, manifest) = cohort("pipeline-errors", 3).await;
    let src = source(&store, &manifest, None);
    let p = &manifest.patients[1];
    store
        .put(&p.volumes[1], b"not a nifti file at all".to_vec())
        .await
        .unwrap();
    let err = src.load(1).await.unwrap_err().to_string();
    assert!(
        err.contains(&p.id) && err.contains("sequence t2") && err.contains(&p.volumes[1]),
        "{err}"
    );

    let q = &manifest.patients[2];
    let original = store.get(&q.volumes[2]).await.unwrap();
    let mut volume: Volume = nifti::decode(&original).unwrap().into_volume().unwrap();
    volume.data[17] = f32::NAN;
    store
        .put(
            &q.volumes[2],
            nifti::encode(&volume, Encoding::Float32, true).unwrap(),
        )
        .await
        .unwrap();
    let err = src.load(2).await.unwrap_err().to_string();
    assert!(
        err.contains(&q.id) && err.contains(&q.volumes[2]) && err.contains("NaN"),
        "{err}"
    );

    store.delete(&p.volumes[0]).await.unwrap();
    let err = src.load(1).await.unwrap_err().to_string();
    assert!(
        err.contains("not found") && err.contains(&p.volumes[0]),
        "{err}"
    );
    let err = src.load(99).await.unwrap_err().to_string();
    assert!(err.contains("out of range"), "{err}");
}
