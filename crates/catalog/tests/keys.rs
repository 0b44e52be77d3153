//! Access keys, nonces and domains on every backend.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use liverec_catalog::CatalogError;

#[tokio::test]
async fn created_keys_have_the_documented_shape_and_are_stored() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        let a = c.create_key().await.unwrap();
        let b = c.create_key().await.unwrap();
        for key in [&a, &b] {
            assert!(key.id.starts_with("LTAI"), "{}: {}", f.label, key.id);
            assert_eq!(key.id.len(), 24, "{}", f.label);
            assert_eq!(key.secret.len(), 30, "{}", f.label);
            assert!(
                key.id
                    .bytes()
                    .chain(key.secret.bytes())
                    .all(|b| b.is_ascii_alphanumeric())
            );
            assert!(key.enabled);
            assert!(
                key.created_at > 1_600_000_000_000,
                "{}: created_at is Unix ms",
                f.label
            );
        }
        assert_ne!(a.id, b.id);
        assert_ne!(a.secret, b.secret);
        assert_eq!(
            c.key(&a.id).await.unwrap().as_ref(),
            Some(&a),
            "{}",
            f.label
        );
        let ids: HashSet<String> = c.keys().await.unwrap().into_iter().map(|k| k.id).collect();
        assert_eq!(
            ids,
            HashSet::from([a.id.clone(), b.id.clone()]),
            "{}",
            f.label
        );
        f.cleanup().await;
    }
}

#[tokio::test]
async fn inserted_key_round_trips_and_a_taken_id_is_refused() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        let key = c.insert_key("testAK", "testSecret").await.unwrap();
        assert_eq!(
            (key.id.as_str(), key.secret.as_str(), key.enabled),
            ("testAK", "testSecret", true)
        );
        assert_eq!(
            c.key("testAK").await.unwrap(),
            Some(key.clone()),
            "{}",
            f.label
        );
        let again = c.insert_key("testAK", "other").await;
        assert!(
            matches!(again, Err(CatalogError::AlreadyExists)),
            "{}: {again:?}",
            f.label
        );
        assert_eq!(
            c.key("testAK").await.unwrap().unwrap().secret,
            "testSecret",
            "{}",
            f.label
        );
        assert_eq!(
            c.key("testak").await.unwrap(),
            None,
            "{}: ids are case-sensitive",
            f.label
        );
        assert_eq!(c.key("").await.unwrap(), None, "{}", f.label);
        f.cleanup().await;
    }
}

#[tokio::test]
async fn keys_are_listed_oldest_first() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        for id in ["k1", "k2", "k3"] {
            c.insert_key(id, "s").await.unwrap();
        }
        let keys = c.keys().await.unwrap();
        let created: Vec<i64> = keys.iter().map(|k| k.created_at).collect();
        assert!(
            created.windows(2).all(|w| w[0] <= w[1]),
            "{}: {created:?}",
            f.label
        );
        assert_eq!(keys.len(), 3, "{}", f.label);
        f.cleanup().await;
    }
}

#[tokio::test]
async fn keys_can_be_disabled_and_enabled_again() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        c.insert_key("ak", "sk").await.unwrap();
        assert!(c.set_key_enabled("ak", false).await.unwrap());
        assert!(!c.key("ak").await.unwrap().unwrap().enabled, "{}", f.label);
        assert!(
            c.set_key_enabled("ak", false).await.unwrap(),
            "{}: idempotent",
            f.label
        );
        assert!(c.set_key_enabled("ak", true).await.unwrap());
        assert!(c.key("ak").await.unwrap().unwrap().enabled, "{}", f.label);
        assert!(
            !c.set_key_enabled("missing", true).await.unwrap(),
            "{}",
            f.label
        );
        assert_eq!(c.key("missing").await.unwrap(), None, "{}", f.label);
        f.cleanup().await;
    }
}

#[tokio::test]
async fn a_nonce_is_accepted_once_per_key() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        assert!(
            c.use_nonce("ak1", "n1", 10_000).await.unwrap(),
            "{}",
            f.label
        );
        assert!(
            !c.use_nonce("ak1", "n1", 10_000).await.unwrap(),
            "{}",
            f.label
        );
        assert!(
            !c.use_nonce("ak1", "n1", 99_000).await.unwrap(),
            "{}: a later expiry is no excuse",
            f.label
        );
        assert!(
            c.use_nonce("ak2", "n1", 10_000).await.unwrap(),
            "{}: other key",
            f.label
        );
        assert!(
            c.use_nonce("ak1", "n2", 10_000).await.unwrap(),
            "{}: other nonce",
            f.label
        );
        f.cleanup().await;
    }
}

#[tokio::test]
async fn purge_deletes_only_nonces_expired_before_now() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        assert!(c.use_nonce("ak", "old", 999).await.unwrap());
        assert!(c.use_nonce("ak", "edge", 1_000).await.unwrap());
        assert!(c.use_nonce("ak", "new", 1_001).await.unwrap());
        assert_eq!(c.purge_nonces(1_000).await.unwrap(), 1, "{}", f.label);
        assert_eq!(c.purge_nonces(1_000).await.unwrap(), 0, "{}", f.label);
        assert!(
            c.use_nonce("ak", "old", 5_000).await.unwrap(),
            "{}: purged nonce is free",
            f.label
        );
        assert!(
            !c.use_nonce("ak", "edge", 5_000).await.unwrap(),
            "{}: expiring now is kept",
            f.label
        );
        assert!(
            !c.use_nonce("ak", "new", 5_000).await.unwrap(),
            "{}",
            f.label
        );
        assert_eq!(c.purge_nonces(i64::MAX).await.unwrap(), 3, "{}", f.label);
        f.cleanup().await;
    }
}

/// Many concurrent requests carrying one nonce: exactly one may pass, on every backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uses_of_one_nonce_let_exactly_one_through() {
    const TASKS: usize = 32;
    const ROUNDS: usize = 5;
    for f in support::catalogs().await {
        let catalog = Arc::new(f.catalog.clone());
        for round in 0..ROUNDS {
            let nonce = format!("nonce-{round}");
            let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let (catalog, barrier, nonce) =
                        (catalog.clone(), barrier.clone(), nonce.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        catalog.use_nonce("ak", &nonce, i64::MAX).await
                    })
                })
                .collect();
            let mut passed = 0;
            for task in tasks {
                if task.await.unwrap().unwrap() {
                    passed += 1;
                }
            }
            assert_eq!(passed, 1, "{} round {round}", f.label);
        }
        drop(catalog);
        f.cleanup().await;
    }
}

#[tokio::test]
async fn domains_are_ensured_idempotently() {
    for f in support::catalogs().await {
        let c = &f.catalog;
        assert!(
            !c.domain_exists("live.example.com").await.unwrap(),
            "{}",
            f.label
        );
        c.ensure_domain("live.example.com").await.unwrap();
        c.ensure_domain("live.example.com").await.unwrap();
        assert!(
            c.domain_exists("live.example.com").await.unwrap(),
            "{}",
            f.label
        );
        assert!(
            !c.domain_exists("example.com").await.unwrap(),
            "{}",
            f.label
        );
        assert!(!c.domain_exists("").await.unwrap(), "{}", f.label);
        c.ensure_domain("a.example.com").await.unwrap();
        assert_eq!(
            c.domains().await.unwrap(),
            ["a.example.com", "live.example.com"],
            "{}",
            f.label
        );
        f.cleanup().await;
    }
}
