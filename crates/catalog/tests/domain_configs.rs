//! Domain functions on every backend.

mod support;

#[tokio::test]
async fn set_again_keeps_the_config_id_and_delete_removes_only_what_is_named() {
    for fx in support::catalogs().await {
        let c = &fx.catalog;
        let label = fx.label;
        let domains = vec!["a.example".to_owned(), "b.example".to_owned()];
        assert!(
            c.domain_configs("a.example").await.unwrap().is_empty(),
            "{label}"
        );
        c.set_domain_configs(
            &domains,
            "aliauth",
            r#"[{"argName":"auth_key1","argValue":"k1"}]"#,
        )
        .await
        .unwrap();
        let first = c
            .domain_config("a.example", "aliauth")
            .await
            .unwrap()
            .unwrap();
        let other = c
            .domain_config("b.example", "aliauth")
            .await
            .unwrap()
            .unwrap();
        assert_ne!(first.config_id, other.config_id, "{label}");
        c.set_domain_configs(
            &domains[..1],
            "aliauth",
            r#"[{"argName":"auth_key1","argValue":"k2"}]"#,
        )
        .await
        .unwrap();
        let again = c
            .domain_config("a.example", "aliauth")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.config_id, first.config_id, "{label}");
        assert!(again.args.contains("k2"), "{label}");
        assert_eq!(again.created_at, first.created_at, "{label}");
        c.set_domain_configs(&domains[..1], "other", "[]")
            .await
            .unwrap();
        let all = c.domain_configs("a.example").await.unwrap();
        let names: Vec<&str> = all.iter().map(|r| r.function_name.as_str()).collect();
        assert_eq!(names, ["aliauth", "other"], "{label}");

        let gone = c
            .delete_domain_configs(&domains, &["aliauth".to_owned()])
            .await
            .unwrap();
        assert_eq!(gone, 2, "{label}");
        assert!(
            c.domain_config("a.example", "aliauth")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            c.domain_config("a.example", "other")
                .await
                .unwrap()
                .is_some()
        );
    }
}
