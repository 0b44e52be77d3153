"""Domain functions through the current SDK: BatchSetLiveDomainConfigs, DescribeLiveDomainConfigs
and BatchDeleteLiveDomainConfigs with `aliauth` (signed publish URLs), and their errors."""

from __future__ import annotations

import json

from alibabacloud_live20161101 import models as live_models

from liverec_support import assert_ok, expect_error

DOMAINS = "auth-a.example.com,Auth-B.example.com"


def aliauth(**args) -> str:
    return json.dumps([{
        "functionName": "aliauth",
        "functionArgs": [{"argName": k, "argValue": v} for k, v in args.items()],
    }])


def describe(client, domain, names="aliauth"):
    resp = client.describe_live_domain_configs(
        live_models.DescribeLiveDomainConfigsRequest(domain_name=domain, function_names=names))
    assert_ok(resp)
    configs = resp.body.domain_configs.domain_config if resp.body.domain_configs else []
    return [(c.function_name, c.status, c.config_id,
             {a.arg_name: a.arg_value for a in c.function_args.function_arg}) for c in configs]


def test_set_describe_update_and_delete_aliauth(server):
    client = server.client()
    assert_ok(client.batch_set_live_domain_configs(live_models.BatchSetLiveDomainConfigsRequest(
        domain_names=DOMAINS,
        functions=aliauth(auth_type="type_a", auth_key1="primaryKey1", auth_key2="second22",
                          ali_auth_delta="600"))))
    for domain in ("auth-a.example.com", "auth-b.example.com"):
        [(name, status, config_id, args)] = describe(client, domain)
        assert (name, status) == ("aliauth", "success")
        assert config_id and config_id.isdigit()
        assert args == {"auth_type": "type_a", "auth_key1": "primaryKey1", "auth_key2": "second22",
                        "ali_auth_delta": "600"}
    # Set again: new arguments, the same ConfigId.
    [(_, _, first_id, _)] = describe(client, "auth-a.example.com")
    assert_ok(client.batch_set_live_domain_configs(live_models.BatchSetLiveDomainConfigsRequest(
        domain_names="auth-a.example.com", functions=aliauth(auth_type="no_auth"))))
    [(_, _, again_id, args)] = describe(client, "auth-a.example.com")
    assert again_id == first_id and args == {"auth_type": "no_auth"}

    assert_ok(client.batch_delete_live_domain_configs(live_models.BatchDeleteLiveDomainConfigsRequest(
        domain_names=DOMAINS, function_names="aliauth")))
    assert describe(client, "auth-a.example.com") == []
    assert describe(client, "auth-b.example.com", names=None) == []


def test_bad_functions_and_names_are_invalid_parameters(server):
    client = server.client()

    def set_(domains, functions):
        return lambda: client.batch_set_live_domain_configs(
            live_models.BatchSetLiveDomainConfigsRequest(domain_names=domains, functions=functions))

    for functions in (aliauth(auth_type="type_a", auth_key1="short"),
                      aliauth(auth_type="type_c", auth_key1="primaryKey1"),
                      json.dumps([{"functionName": "ip_allow_list_set", "functionArgs": []}]),
                      "[{"):
        expect_error(set_("auth-a.example.com", functions), 400, "InvalidParameter")
    expect_error(set_("bad domain!", aliauth(auth_type="no_auth")), 400, "InvalidParameter")
    expect_error(lambda: client.describe_live_domain_configs(live_models.DescribeLiveDomainConfigsRequest(
        domain_name="auth-a.example.com", function_names="referer_white_list_set")), 400, "InvalidParameter")
