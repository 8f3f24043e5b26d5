"""The gRPC API: kurz.v1.LinkService over the same operations as REST (docs/grpc.md)."""
