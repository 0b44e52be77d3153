//! Notify configs on every backend.

mod support;

use liverec_catalog::NotifyConfigRow;

fn config(domain: &str, url: &str) -> NotifyConfigRow {
    NotifyConfigRow {
        domain: domain.to_owned(),
        notify_url: url.to_owned(),
        on_demand_url: String::new(),
        need_status_notify: false,
        notify_req_auth: false,
        notify_auth_key: String::new(),
        created_at: 0,
        updated_at: 0,
    }
}

#[tokio::test]
async fn add_update_delete_describe() {
    for fx in support::catalogs().await {
        let c = &fx.catalog;
        let label = fx.label;
        assert_eq!(c.notify_config("a.example").await.unwrap(), None, "{label}");
        assert!(
            c.insert_notify_config(&config("a.example", "http://x/1"))
                .await
                .unwrap()
        );
        // A second add for the domain changes nothing.
        assert!(
            !c.insert_notify_config(&config("a.example", "http://x/2"))
                .await
                .unwrap()
        );
        let got = c.notify_config("a.example").await.unwrap().unwrap();
        assert_eq!(got.notify_url, "http://x/1", "{label}");
        assert!(
            got.created_at > 0 && got.updated_at == got.created_at,
            "{label}"
        );

        let mut changed = config("a.example", "https://y/cb");
        changed.on_demand_url = "http://y/od".into();
        changed.need_status_notify = true;
        changed.notify_req_auth = true;
        changed.notify_auth_key = "abcdefghijklmnop".into();
        assert!(c.update_notify_config(&changed).await.unwrap());
        assert!(
            !c.update_notify_config(&config("b.example", "http://z"))
                .await
                .unwrap()
        );
        let got = c.notify_config("a.example").await.unwrap().unwrap();
        assert_eq!(
            (
                got.notify_url.as_str(),
                got.on_demand_url.as_str(),
                got.need_status_notify,
                got.notify_req_auth,
                got.notify_auth_key.as_str()
            ),
            (
                "https://y/cb",
                "http://y/od",
                true,
                true,
                "abcdefghijklmnop"
            ),
            "{label}"
        );
        assert!(c.delete_notify_config("a.example").await.unwrap());
        assert!(!c.delete_notify_config("a.example").await.unwrap());
        assert_eq!(c.notify_config("a.example").await.unwrap(), None, "{label}");
        fx.cleanup().await;
    }
}
