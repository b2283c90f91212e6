"""A loopback S3-compatible server (moto) for the benchmarks, with fsspec's ``s3://`` pointed at it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def loopback_s3(bucket: str = "geovr-bench") -> Iterator[str]:
    """Start moto's S3 server on 127.0.0.1 (random port), create ``bucket``; yields ``s3://bucket``.

    Needs ``moto[s3,server]`` and ``s3fs`` (the dev extra). Requests go through the real S3 HTTP
    protocol on the loopback interface, so latency is a local HTTP server's, not a cloud's.
    """
    import boto3
    import fsspec
    from moto.server import ThreadedMotoServer

    creds = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in creds}
    os.environ.update(creds)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    old = fsspec.config.conf.get("s3")
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        fsspec.config.conf["s3"] = {"endpoint_url": endpoint, "key": "bench", "secret": "bench"}
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
        yield f"s3://{bucket}"
    finally:
        fsspec.config.conf.pop("s3", None)
        if old is not None:
            fsspec.config.conf["s3"] = old
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
