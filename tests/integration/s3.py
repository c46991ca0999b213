"""A local S3 (moto's server) for the integration tests: a subprocess on 127.0.0.1, stopped by handle.

Clients reach it through the standard environment variables only (``AWS_ENDPOINT_URL`` and fake
credentials), as pyarrow, boto3 and Ray do on a real cluster; no URI carries an endpoint.
"""

from __future__ import annotations

import subprocess
import tempfile
import uuid
from pathlib import Path


class S3Server:
    def __init__(self, endpoint: str, env: dict):
        self.endpoint = endpoint
        self.env = env  # what a client of this store needs (given to the Ray head, the jobs, this process)

    def create_bucket(self) -> str:
        import boto3

        name = f"f2r-{uuid.uuid4().hex[:12]}"
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name=self.env["AWS_REGION"],
                              aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])
        client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint, region_name=self.env["AWS_REGION"],
                              aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def start(bin_dir: Path, port: int) -> tuple[subprocess.Popen, Path, S3Server]:
    tmp = Path(tempfile.mkdtemp(prefix="f2r-s3-", dir="/tmp"))
    log = tmp / "moto.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(bin_dir / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True,
        )
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        # No instance-metadata probing and no user's ~/.aws files.
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-credentials"),
    }
    return process, log, S3Server(endpoint, env)
