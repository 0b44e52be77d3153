"""An S3 client for the tests, independent of liverec: boto3 (installed with moto) against an
endpoint such as a moto_server, path-style, with moto's test credentials (any are accepted).

    s3tool.py ENDPOINT mkbucket BUCKET
    s3tool.py ENDPOINT put BUCKET KEY        < data
    s3tool.py ENDPOINT get BUCKET KEY        > data   (exit 3: no such key)
    s3tool.py ENDPOINT list BUCKET [PREFIX]           (one JSON object per line: key, size)
    s3tool.py ENDPOINT delete BUCKET KEY
    s3tool.py ENDPOINT serve

`serve` answers JSON requests, one per line on stdin, with one JSON line each on stdout, so a
test pays boto3's start-up once: {"op": "get", "bucket": B, "key": K} and likewise for
mkbucket, put (with "data" in hex), list (with "prefix") and delete. Answers are
{"ok": true} plus "data" (hex, get) or "objects" ([[key, size], ...], list), or
{"ok": false, "missing": true} for a get of no such key, or {"ok": false, "error": "..."}.

Options before ENDPOINT: --timeout S (connect and read, default 10), --attempts N (total,
default 3; 1 fails at the first refused or dropped connection). A CLI command exits 1 with
the error on stderr for any other failure.
"""

from __future__ import annotations

import argparse
import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def client(endpoint: str, timeout: float, attempts: int):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"total_max_attempts": attempts, "mode": "standard"},
        ),
    )


class Missing(Exception):
    pass


def run(s3, op: str, bucket: str, key: str = "", prefix: str = "", data: bytes = b""):
    if op == "mkbucket":
        s3.create_bucket(Bucket=bucket)
    elif op == "put":
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    elif op == "get":
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise Missing() from e
            raise
    elif op == "list":
        objects = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            objects += [[o["Key"], o["Size"]] for o in page.get("Contents", [])]
        return objects
    elif op == "delete":
        s3.delete_object(Bucket=bucket, Key=key)
    else:
        raise ValueError(f"unknown op {op!r}")
    return None


def serve(s3) -> int:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            out = run(
                s3,
                req["op"],
                req["bucket"],
                key=req.get("key", ""),
                prefix=req.get("prefix", ""),
                data=bytes.fromhex(req.get("data", "")),
            )
            answer = {"ok": True}
            if isinstance(out, bytes):
                answer["data"] = out.hex()
            elif out is not None:
                answer["objects"] = out
        except Missing:
            answer = {"ok": False, "missing": True}
        except Exception as e:  # noqa: BLE001 - every failure is an answer
            answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--attempts", type=int, default=3)
    ap.add_argument("endpoint")
    ap.add_argument("command", choices=["mkbucket", "put", "get", "list", "delete", "serve"])
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    s3 = client(a.endpoint, a.timeout, a.attempts)
    if a.command == "serve":
        return serve(s3)
    if not a.args:
        ap.error("a bucket is required")
    bucket, rest = a.args[0], a.args[1:]
    try:
        if a.command == "list":
            for key, size in run(s3, "list", bucket, prefix=rest[0] if rest else ""):
                print(json.dumps({"key": key, "size": size}))
            return 0
        key = rest[0] if rest else ""
        data = sys.stdin.buffer.read() if a.command == "put" else b""
        out = run(s3, a.command, bucket, key=key, data=data)
        if isinstance(out, bytes):
            sys.stdout.buffer.write(out)
    except Missing:
        return 3
    except Exception as e:  # noqa: BLE001 - any failure is the caller's answer
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
