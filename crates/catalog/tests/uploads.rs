//! The upload queue on every backend: name reservation against the index and other uploads,
//! idempotent enqueue, group order, failures and backoff, finishing a group, the backlog.

mod support;

use liverec_catalog::{
    Catalog, CatalogError, NewUpload, ObjectKind, QueuedUpload, RecordingObject, RecordingRow,
    UploadBacklog,
};

/// Far in the future: every upload is due.
const LATER: i64 = i64::MAX;

fn new_upload(bucket: &str, spool: &str, group: Option<&str>) -> NewUpload {
    NewUpload {
        bucket: bucket.into(),
        spool_path: format!("/data/spool/{spool}"),
        group_id: group.map(str::to_owned),
        completion: group.map(|g| format!(r#"{{"group":"{g}"}}"#)),
        size: 4_096,
    }
}

/// `name.mp4`, `name_1.mp4`, `name_2.mp4` …
fn names(name: &str) -> impl Fn(u32) -> String + Sync + '_ {
    move |n| {
        if n == 0 {
            format!("{name}.mp4")
        } else {
            format!("{name}_{n}.mp4")
        }
    }
}

async fn enqueue(c: &Catalog, new: &NewUpload, name: &str) -> QueuedUpload {
    c.enqueue_upload(new, &names(name), 10)
        .await
        .expect("enqueue upload")
}

async fn due_ids(c: &Catalog, bucket: &str, now: i64) -> Vec<i64> {
    c.due_uploads(bucket, now, 100)
        .await
        .expect("due uploads")
        .into_iter()
        .map(|u| u.id)
        .collect()
}

fn indexed(
    id: &str,
    bucket: &str,
    file: &str,
    objects: &[&str],
) -> (RecordingRow, Vec<RecordingObject>) {
    let row = RecordingRow {
        record_id: id.into(),
        domain: "live.example.com".into(),
        app: "live".into(),
        stream: "cam1".into(),
        format: "m3u8".into(),
        oss_bucket: bucket.into(),
        oss_object: file.into(),
        ..RecordingRow::default()
    };
    let objects = objects
        .iter()
        .zip(0..)
        .map(|(name, seq)| RecordingObject {
            seq,
            bucket: bucket.into(),
            object: (*name).into(),
            kind: ObjectKind::Segment,
            start_time: 0,
            duration_ms: 0,
            size: 0,
        })
        .collect();
    (row, objects)
}

#[tokio::test]
async fn names_taken_by_the_index_or_other_uploads_are_skipped() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        // The index holds cam.mp4 as an object and cam_2.mp4 as a row's file.
        let (row, objects) = indexed("r1", "b", "cam_2.mp4", &["cam.mp4"]);
        c.insert_recording_with_objects(&row, &objects)
            .await
            .unwrap();

        let first = enqueue(c, &new_upload("b", "1", None), "cam").await;
        assert_eq!(first.object, "cam_1.mp4", "{}", f.label);
        let second = enqueue(c, &new_upload("b", "2", None), "cam").await;
        assert_eq!(second.object, "cam_3.mp4", "{}", f.label);
        assert!(second.id > first.id, "{}", f.label);
        // Another bucket has its own names.
        let elsewhere = enqueue(c, &new_upload("other", "3", None), "cam").await;
        assert_eq!(elsewhere.object, "cam.mp4", "{}", f.label);

        // All of cam, cam_1 … cam_3 taken: with max_suffix 3 there is no name left.
        let full = c
            .enqueue_upload(&new_upload("b", "4", None), &names("cam"), 3)
            .await;
        assert!(
            matches!(full, Err(CatalogError::NoFreeName)),
            "{}: {full:?}",
            f.label
        );
        let next = c
            .enqueue_upload(&new_upload("b", "4", None), &names("cam"), 4)
            .await
            .unwrap();
        assert_eq!(next.object, "cam_4.mp4", "{}", f.label);
        f.cleanup().await;
    }
}

#[tokio::test]
async fn enqueue_is_idempotent_on_the_spool_path() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        let new = new_upload("b", "same", None);
        let first = enqueue(c, &new, "cam").await;
        // A retry after a crash, even one that would now pick other names, gets the same row.
        let again = enqueue(c, &new, "other").await;
        assert_eq!(again, first, "{}", f.label);
        assert_eq!(due_ids(c, "b", LATER).await, [first.id], "{}", f.label);

        let row = c.upload(first.id).await.unwrap().unwrap();
        assert_eq!(
            (
                row.bucket.as_str(),
                row.object.as_str(),
                row.spool_path.as_str(),
                row.size,
                row.attempts,
                row.done,
                row.last_error.as_deref(),
                row.group_id.as_deref(),
                row.completion.as_deref(),
            ),
            (
                "b",
                "cam.mp4",
                "/data/spool/same",
                4_096,
                0,
                false,
                None,
                None,
                None
            ),
            "{}",
            f.label
        );
        // Due at once: the first attempt is at creation.
        assert_eq!(row.next_attempt_at, row.created_at, "{}", f.label);
        f.cleanup().await;
    }
}

#[tokio::test]
async fn a_group_goes_in_order_and_finishing_it_frees_its_names() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        let seg0 = enqueue(c, &new_upload("b", "g/0.ts", Some("g")), "seg0").await;
        let seg1 = enqueue(c, &new_upload("b", "g/1.ts", Some("g")), "seg1").await;
        let single = enqueue(c, &new_upload("b", "single", None), "single").await;
        let list = enqueue(c, &new_upload("b", "g/list", Some("g")), "list").await;
        assert!(seg0.id < seg1.id && seg1.id < list.id);

        // Only the group's first open member is due, beside ungrouped uploads.
        assert_eq!(
            due_ids(c, "b", LATER).await,
            [seg0.id, single.id],
            "{}",
            f.label
        );
        // A failing member holds the rest of its group back.
        let retry_at = LATER - 10;
        c.upload_attempt_failed(seg0.id, retry_at, "timeout")
            .await
            .unwrap();
        assert_eq!(
            due_ids(c, "b", retry_at - 1).await,
            [single.id],
            "{}",
            f.label
        );
        assert_eq!(
            due_ids(c, "b", retry_at).await,
            [seg0.id, single.id],
            "{}",
            f.label
        );

        assert!(c.upload_done(seg0.id).await.unwrap());
        assert_eq!(
            due_ids(c, "b", LATER).await,
            [seg1.id, single.id],
            "{}",
            f.label
        );
        assert!(c.upload_done(seg1.id).await.unwrap());
        assert_eq!(
            due_ids(c, "b", LATER).await,
            [single.id, list.id],
            "{}",
            f.label
        );
        assert!(c.upload_done(list.id).await.unwrap());
        assert_eq!(due_ids(c, "b", LATER).await, [single.id], "{}", f.label);

        // Done rows still reserve their names.
        let taken = enqueue(c, &new_upload("b", "x", None), "seg0").await;
        assert_eq!(taken.object, "seg0_1.mp4", "{}", f.label);

        // The caller indexes the group, then finishes the playlist: every row goes.
        let (row, objects) = indexed("rec", "b", "list.mp4", &["seg0.mp4", "seg1.mp4"]);
        c.insert_recording_with_objects(&row, &objects)
            .await
            .unwrap();
        assert!(c.finish_upload(list.id).await.unwrap());
        for id in [seg0.id, seg1.id, list.id] {
            assert_eq!(c.upload(id).await.unwrap(), None, "{}: {id}", f.label);
        }
        assert!(c.upload(single.id).await.unwrap().is_some());
        assert!(!c.finish_upload(list.id).await.unwrap(), "{}", f.label);
        // The names are the index's now.
        let after = enqueue(c, &new_upload("b", "y", None), "seg1").await;
        assert_eq!(after.object, "seg1_1.mp4", "{}", f.label);
        f.cleanup().await;
    }
}

#[tokio::test]
async fn finishing_an_early_member_leaves_the_group_open() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        let a = enqueue(c, &new_upload("b", "g/a", Some("g")), "a").await;
        let b = enqueue(c, &new_upload("b", "g/b", Some("g")), "b").await;
        let c2 = enqueue(c, &new_upload("b", "g/c", Some("g")), "c").await;
        let other = enqueue(c, &new_upload("b", "h/a", Some("h")), "h").await;
        c.upload_done(a.id).await.unwrap();
        c.upload_done(other.id).await.unwrap();
        // b is finished while c is still open: a (done) stays reserved.
        c.upload_done(b.id).await.unwrap();
        assert!(c.finish_upload(b.id).await.unwrap());
        assert!(c.upload(a.id).await.unwrap().is_some(), "{}", f.label);
        assert_eq!(due_ids(c, "b", LATER).await, [c2.id], "{}", f.label);
        // Finishing the last open member clears the group's done rows, not another group's.
        assert!(c.finish_upload(c2.id).await.unwrap());
        assert_eq!(c.upload(a.id).await.unwrap(), None, "{}", f.label);
        assert!(c.upload(other.id).await.unwrap().is_some(), "{}", f.label);
        f.cleanup().await;
    }
}

#[tokio::test]
async fn failures_are_counted_and_shown_in_the_backlog() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        assert_eq!(
            c.upload_backlog("b").await.unwrap(),
            UploadBacklog::default()
        );
        assert!(c.pending_upload_buckets().await.unwrap().is_empty());

        let a = enqueue(c, &new_upload("b", "a", None), "a").await;
        let b = enqueue(c, &new_upload("b", "b", None), "b").await;
        let done = enqueue(c, &new_upload("b", "done", None), "done").await;
        enqueue(c, &new_upload("z", "z", None), "z").await;
        c.upload_done(done.id).await.unwrap();

        assert!(
            c.upload_attempt_failed(a.id, 1_000, "connection refused")
                .await
                .unwrap()
        );
        assert!(
            c.upload_attempt_failed(a.id, 3_000, "403 Forbidden")
                .await
                .unwrap()
        );
        assert!(
            c.upload_attempt_failed(b.id, 2_000, "timeout")
                .await
                .unwrap()
        );
        assert!(!c.upload_attempt_failed(9_999, 0, "none").await.unwrap());
        let row = c.upload(a.id).await.unwrap().unwrap();
        assert_eq!(
            (row.attempts, row.next_attempt_at, row.last_error.as_deref()),
            (2, 3_000, Some("403 Forbidden")),
            "{}",
            f.label
        );
        assert_eq!(
            due_ids(c, "b", 1_999).await,
            Vec::<i64>::new(),
            "{}",
            f.label
        );
        assert_eq!(due_ids(c, "b", 2_000).await, [b.id], "{}", f.label);
        assert_eq!(due_ids(c, "b", 3_000).await, [a.id, b.id], "{}", f.label);

        let backlog = c.upload_backlog("b").await.unwrap();
        let created = c.upload(a.id).await.unwrap().unwrap().created_at;
        assert_eq!(
            backlog,
            UploadBacklog {
                pending: 2,
                failing: 2,
                // Two files of new_upload's 4096 bytes.
                bytes: 8_192,
                oldest_created_at: Some(created),
                last_error: Some("403 Forbidden".into()),
            },
            "{}",
            f.label
        );
        assert_eq!(
            c.pending_upload_buckets().await.unwrap(),
            ["b", "z"],
            "{}",
            f.label
        );

        // Holds: the spool file of an upload not yet done.
        assert!(c.upload_holds("/data/spool/a").await.unwrap());
        assert!(!c.upload_holds("/data/spool/done").await.unwrap());
        assert!(!c.upload_holds("/data/spool/unknown").await.unwrap());

        c.upload_done(a.id).await.unwrap();
        c.finish_upload(a.id).await.unwrap();
        c.finish_upload(b.id).await.unwrap();
        assert_eq!(
            c.upload_backlog("b").await.unwrap(),
            UploadBacklog::default(),
            "{}",
            f.label
        );
        assert_eq!(
            c.pending_upload_buckets().await.unwrap(),
            ["z"],
            "{}",
            f.label
        );
        f.cleanup().await;
    }
}

/// Ids keep increasing after every upload is finished (never reused).
#[tokio::test]
async fn ids_are_never_reused() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        let first = enqueue(c, &new_upload("b", "1", None), "a").await;
        c.finish_upload(first.id).await.unwrap();
        let second = enqueue(c, &new_upload("b", "2", None), "a").await;
        assert!(second.id > first.id, "{}", f.label);
        assert_eq!(second.object, "a.mp4", "{}", f.label);
        f.cleanup().await;
    }
}

/// Concurrent enqueues of different files under the same names each get their own name, and
/// concurrent enqueues of the same file get one row.
#[tokio::test]
async fn concurrent_enqueues_never_share_a_name() {
    for f in support::catalogs().await {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..12 {
            let c = f.catalog.clone();
            tasks.spawn(async move {
                let spool = format!("{}", i % 6);
                c.enqueue_upload(&new_upload("b", &spool, None), &names("cam"), 20)
                    .await
                    .unwrap()
            });
        }
        let queued = tasks.join_all().await;
        let mut objects: Vec<&str> = queued.iter().map(|q| q.object.as_str()).collect();
        objects.sort_unstable();
        objects.dedup();
        assert_eq!(objects.len(), 6, "{}: {queued:?}", f.label);
        assert_eq!(
            f.catalog.upload_backlog("b").await.unwrap().pending,
            6,
            "{}",
            f.label
        );
        f.cleanup().await;
    }
}

/// After an outage every waiting upload of the bucket becomes due at once (other buckets and
/// done uploads untouched), and a pending object is found in its spool file until it is done.
#[tokio::test]
async fn uploads_retry_now_and_pending_objects_are_found_in_the_spool() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        let a = enqueue(c, &new_upload("b", "a", None), "a").await;
        let b = enqueue(c, &new_upload("b", "b", None), "b").await;
        let z = enqueue(c, &new_upload("z", "z", None), "z").await;
        for id in [a.id, b.id, z.id] {
            c.upload_attempt_failed(id, 60_000, "connection refused")
                .await
                .unwrap();
        }
        c.upload_attempt_failed(a.id, 120_000, "connection refused")
            .await
            .unwrap();
        assert!(due_ids(c, "b", 1_000).await.is_empty(), "{}", f.label);
        assert_eq!(
            c.retry_uploads_now("b", 1_000).await.unwrap(),
            2,
            "{}",
            f.label
        );
        assert_eq!(due_ids(c, "b", 1_000).await, [a.id, b.id], "{}", f.label);
        assert!(due_ids(c, "z", 1_000).await.is_empty(), "{}", f.label);
        // Failures stay counted (backoff and the backlog's `failing` go on from there).
        let row = c.upload(a.id).await.unwrap().unwrap();
        assert_eq!(
            (row.attempts, row.next_attempt_at),
            (2, 1_000),
            "{}",
            f.label
        );
        assert_eq!(c.upload_backlog("b").await.unwrap().failing, 2);

        assert_eq!(
            c.pending_upload_spool("b", "a.mp4")
                .await
                .unwrap()
                .as_deref(),
            Some("/data/spool/a"),
            "{}",
            f.label
        );
        assert_eq!(c.pending_upload_spool("z", "a.mp4").await.unwrap(), None);
        c.upload_done(a.id).await.unwrap();
        assert_eq!(c.pending_upload_spool("b", "a.mp4").await.unwrap(), None);
        f.cleanup().await;
    }
}
