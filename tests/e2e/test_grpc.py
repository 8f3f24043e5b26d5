"""kurz's gRPC API on a real `kurz serve`, through grpcio's own client: what grpcurl,
a Kubernetes probe and another service see (docs/grpc.md)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.reflection_pb2 import ServerReflectionRequest, ServerReflectionResponse

from kurz.app import create_app
from kurz.bootstrap import build
from kurz.config import Settings
from kurz.grpc.kurz.v1 import links_pb2 as pb
from kurz.grpc.kurz.v1 import links_pb2_grpc as pb_grpc
from kurz.grpc.server import GrpcServer
from tests.e2e.support import KURZ, PATIENCE, Server, kurz_env, new_key, run
from tests.integration.grpc.support import proto_rules
from tests.support import free_port

SERVICE = "kurz.v1.LinkService"
HEALTH = "grpc.health.v1.Health"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"
LINKS = "/api/v1/links"


@dataclass
class Kurz:
    """A migrated SQLite file, an API key, and `kurz serve` on it (HTTP and gRPC)."""

    env: dict[str, str]
    cwd: Path
    secret: str
    server: Server

    def metadata(self, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.secret}"), *extra)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


class LinkService:
    """The generated client, typed: grpcio-tools writes no types for service stubs."""

    def __init__(self, channel: grpc.Channel) -> None:
        stub = pb_grpc.LinkServiceStub(channel)  # type: ignore[no-untyped-call]
        self.create: grpc.UnaryUnaryMultiCallable[pb.CreateLinkRequest, pb.Link]
        self.create = stub.CreateLink
        self.get: grpc.UnaryUnaryMultiCallable[pb.GetLinkRequest, pb.Link] = stub.GetLink
        self.resolve: grpc.UnaryUnaryMultiCallable[pb.ResolveLinkRequest, pb.ResolveLinkResponse]
        self.resolve = stub.ResolveLink


@pytest.fixture
def kurz(tmp_path: Path) -> Iterator[Kurz]:
    env = kurz_env(KURZ_DATABASE_URL=f"sqlite:///{tmp_path}/kurz.db")
    migrated = run(["migrate"], env, tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    secret = new_key(env, tmp_path, "grpc-e2e")
    server = Server(tmp_path, env)
    try:
        server.wait_ready()
        yield Kurz(env, tmp_path, secret, server)
    finally:
        server.stop()


@pytest.fixture
def channel(kurz: Kurz) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(kurz.server.grpc_target) as channel:
        yield channel


@pytest.fixture
def links(channel: grpc.Channel) -> LinkService:
    return LinkService(channel)


def health_of(channel: grpc.Channel, service: str) -> int:
    # The health stubs' types declare no methods on HealthStub.
    check: grpc.UnaryUnaryMultiCallable[
        health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
    ] = health_pb2_grpc.HealthStub(channel).Check  # type: ignore[attr-defined]
    return check(health_pb2.HealthCheckRequest(service=service)).status


def reflect(
    channel: grpc.Channel, request: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    """One request on the reflection stream, as grpcurl sends it, and its one answer."""
    # The reflection stubs' types leave the method's type unresolved.
    info = cast(
        "grpc.StreamStreamMultiCallable[ServerReflectionRequest, ServerReflectionResponse]",
        reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo,
    )
    replies = list(info(iter([request])))
    assert len(replies) == 1
    return replies[0]


def pool_of(files: list[descriptor_pb2.FileDescriptorProto]) -> descriptor_pool.DescriptorPool:
    """The files in a pool of their own, each after its dependencies, as a client without
    the .proto builds one."""
    pool = descriptor_pool.DescriptorPool()
    pending = {file.name: file for file in files}

    def add(name: str) -> None:
        file = pending.pop(name, None)
        if file is not None:
            for dependency in file.dependency:
                add(dependency)
            pool.Add(file)

    for name in list(pending):
        add(name)
    return pool


def as_rest(link: pb.Link) -> dict[str, Any]:
    """A gRPC Link under REST's names (docs/grpc.md's table), times as datetimes."""
    return {
        "code": link.code,
        "short_url": link.short_url,
        "url": link.url,
        "alias": link.alias,
        "created_at": link.create_time.ToDatetime(tzinfo=UTC),
        "updated_at": link.update_time.ToDatetime(tzinfo=UTC),
        "valid_from": link.start_time.ToDatetime(tzinfo=UTC)
        if link.HasField("start_time")
        else None,
        "expires_at": link.expire_time.ToDatetime(tzinfo=UTC)
        if link.HasField("expire_time")
        else None,
        "max_visits": link.max_visits if link.HasField("max_visits") else None,
        "redirect_status": link.redirect_status,
        "forward_query": link.forward_query,
        "tags": list(link.tags),
        "version": link.version,
        "created_by": actor(link.created_by) if link.HasField("created_by") else None,
        "updated_by": actor(link.updated_by) if link.HasField("updated_by") else None,
        "domain": link.domain,
        "fallbacks": {
            name: getattr(link.fallbacks, name) if link.fallbacks.HasField(name) else None
            for name in ("not_yet", "expired", "used_up")
        },
        "variants": [{"url": v.url, "weight": v.weight} for v in link.variants] or None,
        "variant_choice": link.variant_choice or None,
        "password_protected": link.password_protected,
        "og_title": link.og_title if link.HasField("og_title") else None,
        "og_description": link.og_description if link.HasField("og_description") else None,
        "og_image": link.og_image if link.HasField("og_image") else None,
        # As REST renders them (this test's links have none: REST shows []).
        "rules": proto_rules(link.rules),
    }


def actor(message: pb.LinkActor) -> dict[str, int | None]:
    return {"user": message.user, "key": message.key if message.HasField("key") else None}


def with_datetimes(body: dict[str, Any]) -> dict[str, Any]:
    times = ("created_at", "updated_at", "valid_from", "expires_at")
    return {
        key: datetime.fromisoformat(value) if key in times and value is not None else value
        for key, value in body.items()
    }


def test_health_answers_serving_for_the_server_and_the_link_service(
    channel: grpc.Channel,
) -> None:
    assert health_of(channel, "") == health_pb2.HealthCheckResponse.SERVING
    assert health_of(channel, SERVICE) == health_pb2.HealthCheckResponse.SERVING
    # It answers for what it serves, not SERVING for any name.
    with pytest.raises(grpc.RpcError) as unknown:
        health_of(channel, "kurz.v1.NoSuchService")
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_services_and_describes_the_link_service(
    channel: grpc.Channel,
) -> None:
    listed = reflect(channel, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {service.name for service in listed.list_services_response.service}
    assert names == {SERVICE, HEALTH, REFLECTION}

    found = reflect(channel, reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE))
    files = []
    for serialized in found.file_descriptor_response.file_descriptor_proto:
        file = descriptor_pb2.FileDescriptorProto()
        file.ParseFromString(serialized)
        files.append(file)
    expected = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(expected)
    assert files[0] == expected
    # With its imports, a client that has no .proto can build every message.
    service = pool_of(files).FindServiceByName(SERVICE)
    methods = {m.name: (m.input_type.full_name, m.output_type.full_name) for m in service.methods}
    assert methods["CreateLink"] == ("kurz.v1.CreateLinkRequest", "kurz.v1.Link")
    assert methods["DeleteLink"] == ("kurz.v1.DeleteLinkRequest", "google.protobuf.Empty")
    generated = pb.DESCRIPTOR.services_by_name["LinkService"]
    assert sorted(methods) == sorted(method.name for method in generated.methods)


def test_a_link_made_over_grpc_redirects_resolves_and_reads_as_over_rest(
    kurz: Kurz, links: LinkService
) -> None:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    request = pb.CreateLinkRequest(
        url="https://example.com/grpc", max_visits=10, forward_query=True, tags=["grpc"]
    )
    request.expire_time.FromDatetime(expires)
    made = links.create(request, metadata=kurz.metadata())
    assert made.short_url == f"{kurz.server.url}/{made.code}"
    assert made.expire_time.ToDatetime(tzinfo=UTC) == expires

    visited = httpx.get(f"{made.short_url}?utm=e2e")
    assert visited.status_code == 302
    assert visited.headers["location"] == "https://example.com/grpc?utm=e2e"

    resolved = links.resolve(
        pb.ResolveLinkRequest(code=made.code, query="utm=e2e"), metadata=kurz.metadata()
    )
    assert resolved.location == visited.headers["location"]
    assert resolved.redirect_status == visited.status_code
    assert resolved.cache_control == visited.headers.get("cache-control", "")

    got = links.get(pb.GetLinkRequest(code=made.code), metadata=kurz.metadata())
    read = httpx.get(f"{kurz.server.url}{LINKS}/{made.code}", headers=kurz.headers())
    assert read.status_code == 200, read.text
    assert as_rest(got) == with_datetimes(read.json())
    assert read.headers["etag"] == f'"{got.version}"'
    # A visit is no write: the link reads as it was made.
    assert got == made


def listed_keys(kurz: Kurz) -> list[dict[str, str]]:
    """`kurz keys list`'s table, a row a key, by column name."""
    # Wide, so that Rich wraps no cell onto a second line.
    listed = run(["keys", "list"], {**kurz.env, "COLUMNS": "300"}, kurz.cwd)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    [header] = [line.split("┃")[1:-1] for line in lines if line.startswith("┃")]
    names = [name.strip() for name in header]
    rows = [line.split("│")[1:-1] for line in lines if line.startswith("│")]
    return [dict(zip(names, (cell.strip() for cell in row), strict=True)) for row in rows]


def test_only_a_key_made_for_a_proxy_may_name_the_visitor(kurz: Kurz, links: LinkService) -> None:
    proxy = new_key(kurz.env, kurz.cwd, "edge", proxy=True)
    keys = {row["name"]: "proxy" in row["scopes"].split() for row in listed_keys(kurz)}
    assert keys == {"grpc-e2e": False, "edge": True}

    request = pb.CreateLinkRequest(url="https://example.com/proxied")
    code = links.create(request, metadata=kurz.metadata()).code
    visitor = pb.ResolveLinkRequest(
        code=code, client_ip="203.0.113.9", user_agent="Mozilla/5.0", referer="https://a.example/"
    )
    with pytest.raises(grpc.RpcError) as refused:
        links.resolve(visitor, metadata=kurz.metadata())
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "kurz keys create --proxy" in (refused.value.details() or "")
    resolved = links.resolve(visitor, metadata=(("authorization", f"Bearer {proxy}"),))
    assert resolved.location == "https://example.com/proxied"


@pytest.mark.parametrize("authorization", [None, "Bearer kurz_not-a-key", "Basic a3Vyeg=="])
def test_a_call_without_a_valid_key_is_unauthenticated(
    kurz: Kurz, links: LinkService, authorization: str | None
) -> None:
    metadata = () if authorization is None else (("authorization", authorization),)
    with pytest.raises(grpc.RpcError) as refused:
        links.create(pb.CreateLinkRequest(url="https://example.com/nokey"), metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

    listed = httpx.get(f"{kurz.server.url}{LINKS}", headers=kurz.headers())
    assert listed.json()["items"] == []


def test_a_create_retried_with_its_idempotency_key_makes_one_link(
    kurz: Kurz, links: LinkService
) -> None:
    request = pb.CreateLinkRequest(url="https://example.com/once", tags=["retried"])
    keyed = kurz.metadata(("idempotency-key", '"grpc-e2e-1"'))

    first, first_call = links.create.with_call(request, metadata=keyed)
    retried, retried_call = links.create.with_call(request, metadata=keyed)
    # The same body under another key is another link: the key, not the URL, made one.
    other = links.create(request, metadata=kurz.metadata(("idempotency-key", '"grpc-e2e-2"')))

    assert retried == first
    assert ("idempotent-replayed", "true") in retried_call.trailing_metadata()
    assert ("idempotent-replayed", "true") not in first_call.trailing_metadata()
    assert other.code != first.code
    listed = httpx.get(
        f"{kurz.server.url}{LINKS}", params={"tag": "retried"}, headers=kurz.headers()
    )
    assert sorted(item["code"] for item in listed.json()["items"]) == sorted(
        [first.code, other.code]
    )


def started_or_exited(server: Server) -> int | None:
    """None once `server` answers over HTTP, or its exit status if it exits first."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        status = server.proc.poll()
        if status is not None:
            return status
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return None
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"kurz serve neither started nor exited within {PATIENCE:g} s")


def test_a_second_server_on_a_taken_grpc_port_fails_to_start(
    kurz: Kurz, channel: grpc.Channel
) -> None:
    port = kurz.server.grpc_port
    second = Server(kurz.cwd, {**kurz.env, "KURZ_GRPC_PORT": str(port)})
    try:
        status = started_or_exited(second)
    finally:
        second.stop()

    output = second.output()
    assert status is not None, f"a second kurz serve shares gRPC port {port}:\n{output}"
    assert status != 0
    assert f"cannot serve gRPC on 127.0.0.1:{port}: the port is in use" in output
    # The first one still has the port to itself.
    assert health_of(channel, SERVICE) == health_pb2.HealthCheckResponse.SERVING


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_worker_opens_no_grpc_port(kurz: Kurz) -> None:
    port = free_port()
    worker = subprocess.Popen(
        [KURZ, "worker"], env={**kurz.env, "KURZ_GRPC_PORT": str(port)}, cwd=kurz.cwd,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert worker.stderr is not None
        # Printed once the worker's lifespan, where `kurz serve` starts gRPC, has run.
        seen = ""
        while "running" not in seen:
            line = worker.stderr.readline()
            assert line, f"kurz worker exited: {seen}"
            seen += line
        assert not listening(port)
        assert listening(kurz.server.grpc_port)  # the probe sees a port that is open
    finally:
        worker.terminate()
        worker.wait()
        if worker.stderr is not None:
            worker.stderr.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_two_grpc_servers_cannot_share_a_port(settings: Settings) -> None:
    # What keeps two kurz processes apart when both pass serve's check at once: the
    # server binds without SO_REUSEPORT (gRPC's default on Linux would share the port).
    state = create_app(build(settings)).state.kurz
    port = free_port()
    first = GrpcServer(state, host="127.0.0.1", port=port)
    await first.start()
    try:
        with pytest.raises(RuntimeError, match=f"Failed to bind to address 127.0.0.1:{port}"):
            GrpcServer(state, host="127.0.0.1", port=port)
    finally:
        await first.stop(grace=0)
