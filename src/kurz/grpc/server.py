"""The gRPC server `kurz serve` runs beside HTTP, in the same event loop and state."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kurz.bootstrap import Parts
from kurz.grpc.kurz.v1 import links_pb2, links_pb2_grpc
from kurz.grpc.servicer import LinkServicer

SERVICE = links_pb2.DESCRIPTOR.services_by_name["LinkService"].full_name


class GrpcServer:
    """kurz.v1.LinkService, grpc.health.v1.Health and server reflection on one port."""

    def __init__(self, state: Parts, *, host: str, port: int) -> None:
        # Without SO_REUSEPORT (gRPC's default on Linux): a second kurz on the same
        # port must fail to start, not silently take half of the first one's calls.
        self.server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        # Generated code, untyped (grpcio-tools writes no stubs for services).
        links_pb2_grpc.add_LinkServiceServicer_to_server(LinkServicer.of(state), self.server)  # type: ignore[no-untyped-call]
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.port = self.server.add_insecure_port(address)

    async def start(self) -> None:
        await self.server.start()
        for name in ("", SERVICE):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float = 5.0) -> None:
        """Answer NOT_SERVING, let running calls finish for up to `grace` seconds, stop."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
