-- Domain functions (BatchSetLiveDomainConfigs & co.); liverec implements `aliauth`, the signed
-- publish URLs. Portable SQL, like the initial schema.
CREATE TABLE domain_configs (
    -- Lowercase.
    domain        TEXT   NOT NULL,
    function_name TEXT   NOT NULL,
    -- Alibaba's ConfigId: a number, unique per row.
    config_id     BIGINT NOT NULL,
    -- The function's arguments as given: a JSON array of {"argName", "argValue"}.
    args          TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (domain, function_name)
);
