"""setuptools hook of the xenchan package (metadata is in pyproject.toml): generates the
xenchan.v1 modules from the protos while the package is built, so that they are never committed
and always match the protos of the tree being installed.

The protos are read from $XENCHAN_PROTO_DIR, else from ../../proto (this directory's place in the
xenchan repository; pip builds local directories in place). The generator is Debian's `protoc`
with `grpc_python_plugin` (protobuf-compiler, protobuf-compiler-grpc), else grpc_tools.protoc
(python3-grpc-tools). Nothing is downloaded.
"""

import glob
import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def proto_dir():
    d = os.environ.get("XENCHAN_PROTO_DIR") or os.path.join(HERE, "..", "..", "proto")
    if not glob.glob(os.path.join(d, "xenchan", "v1", "*.proto")):
        sys.exit("xenchan: no protos in %s/xenchan/v1; build from a xenchan checkout or set "
                 "XENCHAN_PROTO_DIR to its proto/ directory" % d)
    return os.path.abspath(d)


def generate(out_dir):
    """Runs protoc for proto/xenchan/v1/*.proto into out_dir (which gets xenchan/v1/...)."""
    root = proto_dir()
    protos = sorted(glob.glob(os.path.join(root, "xenchan", "v1", "*.proto")))
    plugin = shutil.which("grpc_python_plugin")
    if shutil.which("protoc") and plugin:
        cmd = ["protoc", "-I", root, "-I", "/usr/include", "--python_out=" + out_dir,
               "--plugin=protoc-gen-grpc_python=" + plugin, "--grpc_python_out=" + out_dir]
    else:
        try:
            import grpc_tools  # noqa: F401  (python3-grpc-tools)
        except ImportError:
            sys.exit("xenchan: need protoc and grpc_python_plugin (apt install protobuf-compiler "
                     "protobuf-compiler-grpc) or python3-grpc-tools to generate xenchan.v1")
        cmd = [sys.executable, "-m", "grpc_tools.protoc", "-I", root,
               "--python_out=" + out_dir, "--grpc_python_out=" + out_dir]
    os.makedirs(os.path.join(out_dir, "xenchan", "v1"), exist_ok=True)
    subprocess.run(cmd + protos, check=True)
    with open(os.path.join(out_dir, "xenchan", "v1", "__init__.py"), "w") as f:
        f.write('"""Modules generated from proto/xenchan/v1 at build time."""\n')


class BuildPyWithProtos(build_py):
    """build_py, then the generated xenchan.v1 modules into the build directory."""

    def run(self):
        super().run()
        generate(self.build_lib)


setup(cmdclass={"build_py": BuildPyWithProtos})
