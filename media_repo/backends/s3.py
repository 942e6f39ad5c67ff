"""Media bytes in S3-compatible object storage (AWS, MinIO, Ceph, ...) via boto3.

boto3 is blocking: every call runs in the media I/O thread pool. One client is
shared (boto3 clients are thread-safe); credentials come from the config or,
when unset, boto3's usual chain (environment, profile, instance role).
"""

from __future__ import annotations

import threading
from typing import Any

from media_repo.backends import StorageError
from media_repo.threads import WorkerPool


class S3Backend:
    name = "s3"

    def __init__(
        self,
        bucket: str,
        pool: WorkerPool,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        max_connections: int = 10,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._pool = pool
        self._client_args: dict[str, Any] = {"endpoint_url": endpoint_url, "region_name": region}
        if access_key_id:
            self._client_args["aws_access_key_id"] = access_key_id
            self._client_args["aws_secret_access_key"] = secret_access_key
        self._max_connections = max_connections
        self._client: Any = None
        self._lock = threading.Lock()

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config as BotoConfig

                cfg = BotoConfig(
                    max_pool_connections=self._max_connections,
                    connect_timeout=10,
                    read_timeout=60,
                    retries={"max_attempts": 3, "mode": "standard"},
                )
                self._client = boto3.session.Session().client("s3", config=cfg, **self._client_args)
            return self._client

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _put(self, key: str, data: bytes, content_type: str | None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        self._get_client().put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)

    def _get(self, key: str) -> bytes | None:
        client = self._get_client()
        try:
            obj = client.get_object(Bucket=self.bucket, Key=self._key(key))
        except client.exceptions.NoSuchKey:
            return None
        body = obj["Body"]
        try:
            return body.read()
        finally:
            body.close()

    def _delete(self, key: str) -> None:
        self._get_client().delete_object(Bucket=self.bucket, Key=self._key(key))

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._get_client().head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    async def _call(self, what: str, fn: Any, *args: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await self._pool.run(fn, *args)
        except (BotoCoreError, ClientError) as e:
            raise StorageError(f"S3 {what} failed: {e}") from e

    async def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        await self._call("put", self._put, key, data, content_type)

    async def get(self, key: str) -> bytes | None:
        return await self._call("get", self._get, key)

    async def delete(self, key: str) -> None:
        await self._call("delete", self._delete, key)

    async def exists(self, key: str) -> bool:
        return bool(await self._call("head", self._exists, key))

    def close(self) -> None:
        pass
