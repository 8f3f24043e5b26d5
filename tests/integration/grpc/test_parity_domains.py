"""Domains over gRPC as over REST: links made, read, listed and resolved on a domain,
and a domain's redirect as ResolveLink's answer."""

from __future__ import annotations

import grpc
import httpx
from fastapi import FastAPI

from kurz.grpc.kurz.v1 import links_pb2 as pb
from tests.conftest import KeyMaker
from tests.integration.grpc.support import Rpc, proto_link, rest_client, rest_link
from tests.integration.links.support import create


async def test_a_link_on_a_domain_is_the_same_link_over_both(
    app: FastAPI, api: httpx.AsyncClient, rpc: Rpc, anon: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    async with rest_client(app, await make_key("root", admin=True)) as admin:
        added = await admin.post(
            "/api/v1/domains",
            json={"host": "go.example", "not_found_redirect": "https://e.com/missing"},
        )
        assert added.status_code == 201, added.text
    await create(api, alias="sale", url="https://e.com/default")
    made = await rpc.ok(
        "CreateLink",
        pb.CreateLinkRequest(
            url="https://e.com/go",
            alias="sale",
            domain="GO.example",
            fallbacks=pb.LinkFallbacks(used_up="https://e.com/used"),
        ),
    )
    link = proto_link(made.message)
    assert (link["domain"], link["short_url"]) == ("go.example", "https://go.example/sale")
    assert link["fallbacks"] == {"not_yet": None, "expired": None, "used_up": "https://e.com/used"}
    by_rest = await api.get("/api/v1/links/sale", params={"domain": "go.example"})
    assert rest_link(by_rest.json()) == link
    got = await rpc.ok("GetLink", pb.GetLinkRequest(code="sale", domain="go.example"))
    assert proto_link(got.message) == link
    listed = await rpc.ok("ListLinks", pb.ListLinksRequest(domain="go.example"))
    assert [item.url for item in listed.message.links] == ["https://e.com/go"]

    for domain, url in (("go.example:443", "https://e.com/go"), ("", "https://e.com/default")):
        reply = await rpc.ok("ResolveLink", pb.ResolveLinkRequest(code="sale", domain=domain))
        response = await anon.get("/sale", headers={"Host": domain or "kurz.test"})
        assert reply.message.location == response.headers["location"] == url
    missing = await rpc.ok("ResolveLink", pb.ResolveLinkRequest(code="nope", domain="go.example"))
    assert (missing.message.location, missing.message.redirect_status) == (
        "https://e.com/missing",
        302,
    )
    unknown = await rpc.fails("GetLink", pb.GetLinkRequest(code="sale", domain="x.example"))
    assert unknown.code == grpc.StatusCode.NOT_FOUND
