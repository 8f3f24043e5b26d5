"""The committed kurz.grpc code is what links.proto generates today (`make proto`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import google.rpc

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
# Relative to `-I src`, as the Makefile's proto target has it: the generated imports
# (`from kurz.grpc.kurz.v1 import links_pb2`) and the descriptor's file name depend on it.
PROTO = Path("kurz/grpc/kurz/v1/links.proto")
GENERATED = ("links_pb2.py", "links_pb2.pyi", "links_pb2_grpc.py")
# Where google/rpc/status.proto is (googleapis-common-protos), as the Makefile finds it.
GOOGLEAPIS = Path(google.rpc.__path__[0]).parents[1]


def generate(src: Path, out: Path) -> dict[str, bytes]:
    """Run the Makefile's protoc over `src`'s links.proto into `out`; the files it wrote."""
    out.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{src}", f"-I{GOOGLEAPIS}",
         f"--python_out={out}",
         f"--pyi_out={out}", f"--grpc_python_out={out}", str(src / PROTO)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = out / PROTO.parent
    assert sorted(path.name for path in written.iterdir()) == sorted(GENERATED)
    return {name: (written / name).read_bytes() for name in GENERATED}


def committed() -> dict[str, bytes]:
    return {name: (SRC / PROTO.parent / name).read_bytes() for name in GENERATED}


def stale(generated: dict[str, bytes]) -> list[str]:
    current = committed()
    return [name for name in GENERATED if generated[name] != current[name]]


def test_the_committed_code_is_what_the_proto_generates(tmp_path: Path) -> None:
    out_of_date = stale(generate(SRC, tmp_path / "out"))

    assert not out_of_date, (
        f"{', '.join(out_of_date)} in src/{PROTO.parent} are not what {PROTO.name} generates: "
        "run `make proto` and commit the result"
    )


def test_a_change_to_the_proto_shows_in_the_generated_code(tmp_path: Path) -> None:
    """The comparison above can fail: a field added to a copy of the proto changes the
    messages' code and their type stubs (the service's code has no fields to change)."""
    copy = tmp_path / "src" / PROTO
    copy.parent.mkdir(parents=True)
    shutil.copyfile(SRC / PROTO, copy)
    text = copy.read_text()
    assert "message Link {\n" in text
    added = "message Link {\n  string added_by_test_proto = 99;\n"
    copy.write_text(text.replace("message Link {\n", added))

    assert stale(generate(tmp_path / "src", tmp_path / "out")) == ["links_pb2.py", "links_pb2.pyi"]
