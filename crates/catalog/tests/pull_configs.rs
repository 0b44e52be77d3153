//! Triggered-pull configs on every backend.

mod support;

use liverec_catalog::{ALL_APPS, LazyPullConfig};

fn config(app: &str, origin: &str) -> LazyPullConfig {
    LazyPullConfig {
        domain: "play.example".into(),
        app: app.into(),
        pull_domain: origin.into(),
        pull_app: String::new(),
        pull_protocol: "rtmp".into(),
        transcode_lazy: "no".into(),
        created_at: 0,
        updated_at: 0,
    }
}

#[tokio::test]
async fn an_app_config_comes_before_the_all_apps_one_and_set_replaces() {
    for fx in support::catalogs().await {
        let c = &fx.catalog;
        let label = fx.label;
        assert_eq!(
            c.lazy_pull_for("play.example", "live").await.unwrap(),
            None,
            "{label}"
        );
        c.set_lazy_pull_config(&config(ALL_APPS, "all.example"))
            .await
            .unwrap();
        let all = c
            .lazy_pull_for("play.example", "live")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(all.pull_domain, "all.example", "{label}");
        c.set_lazy_pull_config(&config("live", "one.example"))
            .await
            .unwrap();
        let own = c
            .lazy_pull_for("play.example", "live")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(own.pull_domain, "one.example", "{label}");
        assert_eq!(
            c.lazy_pull_for("play.example", "other")
                .await
                .unwrap()
                .unwrap()
                .app,
            ALL_APPS,
            "{label}"
        );
        // Set again: replaced in place, created_at kept.
        let mut changed = config("live", "two.example;three.example:1936");
        changed.pull_protocol = "httpflv".into();
        c.set_lazy_pull_config(&changed).await.unwrap();
        let listed = c.lazy_pull_configs("play.example", None).await.unwrap();
        assert_eq!(listed.len(), 2, "{label}");
        let live = c
            .lazy_pull_configs("play.example", Some("live"))
            .await
            .unwrap();
        assert_eq!(live.len(), 1, "{label}");
        assert_eq!(
            live[0].pull_domain, "two.example;three.example:1936",
            "{label}"
        );
        assert_eq!(live[0].pull_protocol, "httpflv", "{label}");
        assert_eq!(live[0].created_at, own.created_at, "{label}");
        assert!(
            c.delete_lazy_pull_config("play.example", "live")
                .await
                .unwrap(),
            "{label}"
        );
        assert!(
            !c.delete_lazy_pull_config("play.example", "live")
                .await
                .unwrap(),
            "{label}"
        );
        assert_eq!(
            c.lazy_pull_for("play.example", "live")
                .await
                .unwrap()
                .unwrap()
                .app,
            ALL_APPS,
            "{label}"
        );
    }
}

fn scheduled(stream: &str, start_at: i64, end_at: i64) -> liverec_catalog::PullConfig {
    liverec_catalog::PullConfig {
        domain: "play.example".into(),
        app: "live".into(),
        stream: stream.into(),
        source_url: "rtmp://o.example/live/s".into(),
        start_at,
        end_at,
        source_using: String::new(),
        created_at: 0,
        updated_at: 0,
    }
}

#[tokio::test]
async fn scheduled_pulls_are_added_once_updated_listed_by_window_and_deleted() {
    for fx in support::catalogs().await {
        let c = &fx.catalog;
        let label = fx.label;
        assert!(
            c.add_pull_config(&scheduled("a", 1000, 2000))
                .await
                .unwrap(),
            "{label}"
        );
        assert!(
            !c.add_pull_config(&scheduled("a", 0, 5000)).await.unwrap(),
            "{label}: exists"
        );
        assert!(
            c.add_pull_config(&scheduled("b", 3000, 4000))
                .await
                .unwrap(),
            "{label}"
        );
        assert!(
            !c.update_pull_config(&scheduled("c", 0, 1)).await.unwrap(),
            "{label}: none"
        );
        let streams = |rows: Vec<liverec_catalog::PullConfig>| -> Vec<String> {
            rows.into_iter().map(|r| r.stream).collect()
        };
        assert_eq!(
            streams(c.active_pull_configs(1500).await.unwrap()),
            ["a"],
            "{label}"
        );
        assert!(
            c.active_pull_configs(2000).await.unwrap().is_empty(),
            "{label}: end excluded"
        );
        assert!(
            c.update_pull_config(&scheduled("b", 1000, 4000))
                .await
                .unwrap(),
            "{label}"
        );
        assert_eq!(
            streams(c.active_pull_configs(1500).await.unwrap()),
            ["a", "b"],
            "{label}"
        );
        c.set_pull_source_using("play.example", "live", "a", "rtmp://o.example/live/s")
            .await
            .unwrap();
        let all = c.pull_configs("play.example").await.unwrap();
        assert_eq!(all.len(), 2, "{label}");
        assert_eq!(all[0].source_using, "rtmp://o.example/live/s", "{label}");
        assert_eq!(all[1].start_at, 1000, "{label}");
        assert!(
            c.delete_pull_config("play.example", "live", "a")
                .await
                .unwrap(),
            "{label}"
        );
        assert!(
            !c.delete_pull_config("play.example", "live", "a")
                .await
                .unwrap(),
            "{label}"
        );
    }
}
