"""A real S3-compatible server (moto in server mode) on loopback, shared by the S3 tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Fake credentials, and no instance-metadata lookups: nothing may reach real AWS.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    saved = {key: os.environ.get(key) for key in AWS_ENV}
    os.environ.update(AWS_ENV)
    try:
        # Port 0 let the OS pick a free port; the bound socket knows which.
        _, port = server._server.server_address
        yield f"http://127.0.0.1:{port}"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


def make_bucket(endpoint: str, name: str) -> None:
    import pyarrow.fs as pafs

    host = endpoint.removeprefix("http://")
    admin = pafs.S3FileSystem(
        endpoint_override=host, scheme="http", region="us-east-1", allow_bucket_creation=True
    )
    admin.create_dir(name)
