//! The control plane over real gRPC on loopback, with fake workers that follow
//! the worker contract: gang assignment, results → report, worker loss →
//! smaller group resumed, coordinator restart, stalled collective, cancel.

mod support;

use std::time::Duration;

use cohort_proto::v1::{self, job_event::Kind};
use support::*;

fn kinds(events: &[v1::JobEvent]) -> Vec<&Kind> {
    events.iter().filter_map(|e| e.kind.as_ref()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_on_groups_and_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().to_str().unwrap().to_string();
    let server = coordinator(&artifacts).await;
    let mut jobs = jobs(&server).await;
    let (job_id, trials) = submit(&mut jobs, &spec(2, 2)).await;
    assert_eq!(trials, 2);

    let mut b = FakeWorker::start(&server, "worker-b").await;
    let mut a = FakeWorker::start(&server, "worker-a").await;
    let scores = [
        [
            ("p1", "train", 0.5),
            ("p2", "validation", -1.0),
            ("p3", "test", 2.0),
        ],
        [
            ("p1", "train", 1.5),
            ("p2", "validation", 0.0),
            ("p3", "test", 4.0),
        ],
    ];
    let mut epochs = Vec::new();
    for trial in 0..2u32 {
        let ra = a.next_assignment().await;
        let rb = b.next_assignment().await;
        // Ranks in worker-id order, peers indexed by rank.
        assert_eq!((ra.rank, rb.rank), (0, 1));
        assert_eq!(ra.trial, trial);
        assert_eq!(ra.world_size, 2);
        assert_eq!(ra.peers, vec![a.address.clone(), b.address.clone()]);
        assert_eq!(ra.peers, rb.peers);
        assert_eq!(ra.group_epoch, rb.group_epoch);
        assert!(
            ra.checkpoint_url
                .ends_with(&format!("/jobs/{job_id}/trial-{trial:04}")),
            "{}",
            ra.checkpoint_url
        );
        assert_eq!(ra.bucket_bytes, 25 * 1024 * 1024);
        assert_eq!(ra.wire_format, v1::WireFormat::F32 as i32);
        assert_eq!(ra.collective_timeout_ms, 30_000);
        let trial_spec =
            cohort_common::spec::JobSpec::parse(&ra.trial_spec_toml, "assignment", &[]).unwrap();
        assert_eq!(trial_spec.training.seed, 5 + trial as u64);
        a.running(&ra);
        b.running(&rb);
        a.beat.lock().unwrap().last_epoch = Some(v1::EpochReport {
            epoch: 1,
            train_loss: 2.5,
            validation_c_index: 0.6,
            learning_rate: 1e-3,
            steps: 20,
            seconds_per_step: 0.5,
            sync_seconds_per_step: 0.05,
        });
        epochs.push(
            wait_event(
                &mut jobs,
                &job_id,
                |k| matches!(k, Kind::EpochDone(e) if e.trial == trial && e.epoch == 1),
            )
            .await,
        );
        b.succeed(&rb, &[], 0.0).await;
        a.succeed(&ra, &scores[trial as usize], 0.6 + trial as f64 / 10.0)
            .await;
    }
    let events = watch_all(&mut jobs, &job_id, Duration::from_secs(10)).await;
    let k = kinds(&events);
    let seqs: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(
        matches!(k[0], Kind::TrialStarted(t) if t.trial == 0 && t.worker_ids == ["worker-a", "worker-b"])
    );
    assert_eq!(
        k.iter().filter(|k| matches!(k, Kind::EpochDone(_))).count(),
        2,
        "one EpochDone per new epoch, not per heartbeat"
    );
    match k.last().unwrap() {
        Kind::JobFinished(f) => assert_eq!(f.state, v1::JobState::Succeeded as i32),
        other => panic!("last event {other:?}"),
    }
    // A watcher that resumes after a sequence number gets only what follows.
    let mut after = jobs
        .watch_job(v1::WatchJobRequest {
            job_id: job_id.clone(),
            after_sequence: seqs[seqs.len() - 2],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        after.message().await.unwrap().unwrap().sequence,
        *seqs.last().unwrap()
    );
    assert!(after.message().await.unwrap().is_none());

    let folder = dir.path().join("jobs").join(&job_id);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["state"], "succeeded");
    assert_eq!(report["trials"][1]["best_validation_c_index"], 0.7);
    assert_eq!(report["trials"][0]["steps"], 40);
    assert_eq!(report["ensemble"]["members"], serde_json::json!([0, 1]));
    let csv = std::fs::read_to_string(folder.join("scores.csv")).unwrap();
    assert_eq!(
        csv,
        "patient_id,split,score\np1,train,1\np2,validation,-0.5\np3,test,3\n"
    );
    let got = jobs
        .get_report(v1::GetReportRequest {
            job_id: job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(got.report_json.contains("\"ensemble\""));
    let job = jobs
        .get_job(v1::GetJobRequest { job_id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.state, v1::JobState::Succeeded as i32);
    assert!(
        job.trials
            .iter()
            .all(|t| t.state == v1::TrialState::Succeeded as i32)
    );
    // The epoch's timing reaches the event as metrics, with the sync share derived.
    for event in &epochs {
        let Some(Kind::EpochDone(e)) = &event.kind else {
            panic!("{event:?}")
        };
        assert_eq!(e.metrics.get("seconds_per_step"), Some(&0.5));
        let share = e.metrics["sync_share"];
        assert!((share - 0.1).abs() < 1e-12, "sync share {share}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_worker_breaks_the_group_and_the_trial_resumes_on_fewer() {
    let dir = tempfile::tempdir().unwrap();
    let server = coordinator(dir.path().to_str().unwrap()).await;
    let mut jobs = jobs(&server).await;
    let (job_id, _) = submit(&mut jobs, &spec(1, 2)).await;
    let mut a = FakeWorker::start(&server, "a").await;
    let mut b = FakeWorker::start(&server, "b").await;
    let ra = a.next_assignment().await;
    let rb = b.next_assignment().await;
    a.running(&ra);
    b.running(&rb);
    {
        let mut beat = a.beat.lock().unwrap();
        beat.checkpoint_url = format!("{}/checkpoints/step-7", ra.checkpoint_url);
        beat.checkpoint_step = 7;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.kill();

    let lost = wait_event(&mut jobs, &job_id, |k| matches!(k, Kind::WorkerLost(_))).await;
    match lost.kind.unwrap() {
        Kind::WorkerLost(l) => {
            assert_eq!((l.worker_id.as_str(), l.trial), ("b", 0));
            assert!(l.reason.contains("no heartbeat"), "{}", l.reason);
        }
        _ => unreachable!(),
    }
    let cancel = a.next_cancel().await;
    assert_eq!((cancel.job_id.as_str(), cancel.trial), (job_id.as_str(), 0));
    a.idle();
    // No worker is busy any more, so the trial is re-formed on the one left.
    let again = a.next_assignment().await;
    assert_eq!((again.trial, again.rank, again.world_size), (0, 0, 1));
    assert_eq!(again.peers, vec![a.address.clone()]);
    assert!(again.group_epoch > ra.group_epoch);
    assert_eq!(again.checkpoint_url, ra.checkpoint_url);
    let resumed = wait_event(&mut jobs, &job_id, |k| matches!(k, Kind::TrialResumed(_))).await;
    match resumed.kind.unwrap() {
        Kind::TrialResumed(r) => {
            assert_eq!((r.trial, r.from_step), (0, 7));
            assert_eq!(r.worker_ids, vec!["a".to_string()]);
        }
        _ => unreachable!(),
    }
    // A result of the dissolved group is stale and ignored.
    b.succeed(&rb, &[], 0.1).await;
    a.running(&again);
    a.succeed(&again, &[("p1", "test", 1.0)], 0.65).await;
    let events = watch_all(&mut jobs, &job_id, Duration::from_secs(10)).await;
    match kinds(&events).last().unwrap() {
        Kind::JobFinished(f) => assert_eq!(f.state, v1::JobState::Succeeded as i32),
        other => panic!("{other:?}"),
    }
    let job = jobs
        .get_job(v1::GetJobRequest { job_id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.trials[0].best_validation_c_index, 0.65);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_coordinator_resumes_the_job_without_rerunning_finished_trials() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().to_str().unwrap().to_string();
    let server = coordinator(&artifacts).await;
    let mut jobs_client = jobs(&server).await;
    let (job_id, _) = submit(&mut jobs_client, &spec(2, 1)).await;
    let mut a = FakeWorker::start(&server, "a").await;
    let first = a.next_assignment().await;
    assert_eq!(first.trial, 0);
    a.running(&first);
    a.succeed(&first, &[("p1", "train", 1.0)], 0.6).await;
    let second = a.next_assignment().await;
    assert_eq!(second.trial, 1);
    a.running(&second);
    {
        let mut beat = a.beat.lock().unwrap();
        beat.checkpoint_url = format!("{}/checkpoints/step-5", second.checkpoint_url);
        beat.checkpoint_step = 5;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(a);
    drop(jobs_client);
    drop(server);

    let server = coordinator(&artifacts).await;
    let mut jobs_client = jobs(&server).await;
    let job = jobs_client
        .get_job(v1::GetJobRequest {
            job_id: job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.trials[0].state, v1::TrialState::Succeeded as i32);
    assert_eq!(job.trials[1].state, v1::TrialState::Pending as i32);
    let mut a = FakeWorker::start(&server, "a").await;
    let resumed = a.next_assignment().await;
    assert_eq!(resumed.trial, 1, "the finished trial is not assigned again");
    assert!(resumed.group_epoch > second.group_epoch);
    a.running(&resumed);
    a.succeed(&resumed, &[("p1", "train", 3.0)], 0.7).await;
    let events = watch_all(&mut jobs_client, &job_id, Duration::from_secs(10)).await;
    let k = kinds(&events);
    assert!(
        k.iter()
            .any(|k| matches!(k, Kind::TrialResumed(r) if r.trial == 1 && r.from_step == 5)),
        "history survives the restart and the resume is announced: {k:?}"
    );
    assert_eq!(
        k.iter()
            .filter(|k| matches!(k, Kind::TrialStarted(t) if t.trial == 0))
            .count(),
        1
    );
    match k.last().unwrap() {
        Kind::JobFinished(f) => assert_eq!(f.state, v1::JobState::Succeeded as i32),
        other => panic!("{other:?}"),
    }
    let csv =
        std::fs::read_to_string(dir.path().join("jobs").join(&job_id).join("scores.csv")).unwrap();
    assert_eq!(csv, "patient_id,split,score\np1,train,2\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_collective_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let server = coordinator(dir.path().to_str().unwrap()).await;
    let mut jobs = jobs(&server).await;
    let (job_id, _) = submit(&mut jobs, &spec(1, 2)).await;
    let mut a = FakeWorker::start(&server, "a").await;
    let mut b = FakeWorker::start(&server, "b").await;
    let ra = a.next_assignment().await;
    let rb = b.next_assignment().await;
    a.running(&ra);
    b.running(&rb);
    a.beat.lock().unwrap().collectives_done = 813;
    b.beat.lock().unwrap().collectives_done = 812;
    let stall = wait_event(&mut jobs, &job_id, |k| {
        matches!(k, Kind::StalledCollective(_))
    })
    .await;
    match stall.kind.unwrap() {
        Kind::StalledCollective(s) => {
            assert_eq!((s.trial, s.rank, s.collective), (0, 1, 812));
            assert!(
                s.message
                    .starts_with("trial 0: rank 1 has not joined all-reduce #812 (last heartbeat "),
                "{}",
                s.message
            );
            assert!(s.message.ends_with(" s ago)"), "{}", s.message);
        }
        _ => unreachable!(),
    }
    // Rank 1 catches up and finishes first; its idle heartbeats (count 0) while
    // rank 0 still scores are not a stall.
    b.beat.lock().unwrap().collectives_done = 813;
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.succeed(&rb, &[], 0.0).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.succeed(&ra, &[("p1", "test", 1.0)], 0.6).await;
    let events = watch_all(&mut jobs, &job_id, Duration::from_secs(10)).await;
    let stalls = kinds(&events)
        .into_iter()
        .filter(|k| matches!(k, Kind::StalledCollective(_)))
        .count();
    assert_eq!(stalls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_job_stops_its_groups() {
    let dir = tempfile::tempdir().unwrap();
    let server = coordinator(dir.path().to_str().unwrap()).await;
    let mut jobs = jobs(&server).await;
    let (job_id, _) = submit(&mut jobs, &spec(3, 1)).await;
    let mut a = FakeWorker::start(&server, "a").await;
    let ra = a.next_assignment().await;
    a.running(&ra);
    let job = jobs
        .cancel_job(v1::CancelJobRequest {
            job_id: job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.state, v1::JobState::Cancelled as i32);
    let cancel = a.next_cancel().await;
    assert_eq!(cancel.trial, 0);
    let events = watch_all(&mut jobs, &job_id, Duration::from_secs(10)).await;
    match kinds(&events).last().unwrap() {
        Kind::JobFinished(f) => assert_eq!(f.state, v1::JobState::Cancelled as i32),
        other => panic!("{other:?}"),
    }
    // Unknown jobs and bad specs are errors naming what is wrong.
    let err = jobs
        .get_job(v1::GetJobRequest {
            job_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = jobs
        .submit_job(v1::SubmitJobRequest {
            spec_toml: spec(1, 1),
            overrides: vec!["training.lr=-1".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("training.lr"), "{}", err.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trial_that_keeps_failing_fails_the_job_with_the_last_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = coordinator(dir.path().to_str().unwrap()).await;
    let mut jobs = jobs(&server).await;
    let (job_id, _) = submit(&mut jobs, &spec(2, 1)).await;
    let mut a = FakeWorker::start(&server, "a").await;
    let mut epochs = Vec::new();
    for attempt in 0..5 {
        let assignment = a.next_assignment().await;
        assert_eq!(assignment.trial, 0, "attempt {attempt} retries trial 0");
        epochs.push(assignment.group_epoch);
        a.running(&assignment);
        a.fail(
            &assignment,
            &format!("rank 1 has not joined all-reduce #{attempt}"),
        )
        .await;
    }
    assert!(epochs.windows(2).all(|w| w[0] < w[1]), "{epochs:?}");
    let events = watch_all(&mut jobs, &job_id, Duration::from_secs(10)).await;
    match kinds(&events).last().unwrap() {
        Kind::JobFinished(f) => assert_eq!(f.state, v1::JobState::Failed as i32),
        other => panic!("{other:?}"),
    }
    let job = jobs
        .get_job(v1::GetJobRequest { job_id })
        .await
        .unwrap()
        .into_inner();
    assert!(
        job.error.contains("after 5 attempts") && job.error.contains("all-reduce #4"),
        "{}",
        job.error
    );
    assert_eq!(job.trials[0].state, v1::TrialState::Failed as i32);
    assert_eq!(job.trials[1].state, v1::TrialState::Failed as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deregistering_or_re_registering_breaks_the_group_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = coordinator(dir.path().to_str().unwrap()).await;
    let mut jobs = jobs(&server).await;
    let (job_id, _) = submit(&mut jobs, &spec(1, 2)).await;
    let mut a = FakeWorker::start(&server, "a").await;
    let mut b = FakeWorker::start(&server, "b").await;
    let ra = a.next_assignment().await;
    let rb = b.next_assignment().await;
    a.running(&ra);
    b.running(&rb);
    b.deregister().await;
    let lost = wait_event(&mut jobs, &job_id, |k| matches!(k, Kind::WorkerLost(_))).await;
    match lost.kind.unwrap() {
        Kind::WorkerLost(l) => assert_eq!(l.reason, "deregistered: SIGTERM"),
        _ => unreachable!(),
    }
    a.next_cancel().await;
    // `b` comes back and `a` restarts (registers again while assigned).
    let mut b = FakeWorker::start(&server, "b").await;
    a.idle();
    let ra2 = a.next_assignment().await;
    let rb2 = b.next_assignment().await;
    assert_eq!((ra2.world_size, ra2.rank, rb2.rank), (2, 0, 1));
    a.running(&ra2);
    b.running(&rb2);
    let mut a2 = FakeWorker::start(&server, "a").await;
    let cancel = b.next_cancel().await;
    assert_eq!(cancel.trial, 0);
    b.idle();
    let ra3 = a2.next_assignment().await;
    assert!(ra3.group_epoch > ra2.group_epoch);
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_nobody_takes_up_is_re_formed() {
    let dir = tempfile::tempdir().unwrap();
    let server = coordinator(dir.path().to_str().unwrap()).await;
    let mut jobs = jobs(&server).await;
    let (job_id, _) = submit(&mut jobs, &spec(1, 1)).await;
    let mut a = FakeWorker::start(&server, "a").await;
    let first = a.next_assignment().await;
    // The worker "loses" the command: its heartbeats keep saying it is idle.
    let cancel = a.next_cancel().await;
    assert_eq!(cancel.trial, 0);
    assert!(
        cancel.reason.contains("did not take up"),
        "{}",
        cancel.reason
    );
    let second = a.next_assignment().await;
    assert!(second.group_epoch > first.group_epoch);
    a.running(&second);
    a.succeed(&second, &[("p1", "test", 1.0)], 0.6).await;
    let events = watch_all(&mut jobs, &job_id, Duration::from_secs(10)).await;
    match kinds(&events).last().unwrap() {
        Kind::JobFinished(f) => assert_eq!(f.state, v1::JobState::Succeeded as i32),
        other => panic!("{other:?}"),
    }
}
