"""Code generation with the system protoc and its gRPC plugins.

Thin macros over genrules that run Debian's `/usr/bin/protoc` with
`grpc_cpp_plugin` / `grpc_python_plugin`; Bazel's own proto rules would need
protobuf sources that Debian does not ship. In every macro the package
directory is the import root: `proto/xenchan/v1/x.proto` in package `//proto`
is imported, and its header included, as `xenchan/v1/x.proto` / `.pb.h`.
"""

_PROTOC = "/usr/bin/protoc"

def _import_root():
    repo = native.repository_name().lstrip("@")
    parts = (["external", repo] if repo else []) + ([native.package_name()] if native.package_name() else [])
    return "/".join(parts) or "."

def _protoc(flags, extra_imports):
    imports = [_import_root()] + extra_imports + ["/usr/include"]
    return " ".join([_PROTOC] + ["-I" + i for i in imports] + flags + ["$(SRCS)"])

def _stem(src):
    return src[:-len(".proto")]

def cc_proto_library(name, srcs, deps = [], grpc = False, extra_imports = [], **kwargs):
    """A cc_library of the generated C++ (and, with grpc, service) code."""
    outs = []
    for s in srcs:
        outs += [_stem(s) + ".pb.h", _stem(s) + ".pb.cc"]
        if grpc:
            outs += [_stem(s) + ".grpc.pb.h", _stem(s) + ".grpc.pb.cc"]
    flags = ["--cpp_out=$(RULEDIR)"]
    if grpc:
        flags += ["--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin", "--grpc_out=$(RULEDIR)"]
    native.genrule(
        name = name + "_gen",
        srcs = srcs,
        outs = outs,
        cmd = _protoc(flags, extra_imports),
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        includes = ["."],
        copts = ["-Wno-unused-parameter", "-Wno-deprecated-declarations"],
        deps = deps + ["@system//:protobuf"] + (["@system//:grpcpp"] if grpc else []),
        **kwargs
    )

def py_proto_sources(name, srcs, extra_imports = [], **kwargs):
    """Generated Python modules (`_pb2.py`, `_pb2_grpc.py`) for `srcs`."""
    outs = []
    for s in srcs:
        outs += [_stem(s) + "_pb2.py", _stem(s) + "_pb2_grpc.py"]
    native.genrule(
        name = name,
        srcs = srcs,
        outs = outs,
        cmd = _protoc([
            "--python_out=$(RULEDIR)",
            "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
            "--grpc_python_out=$(RULEDIR)",
        ], extra_imports),
        **kwargs
    )

def proto_descriptor_set(name, srcs, extra_imports = [], **kwargs):
    """A FileDescriptorSet of `srcs` and their imports, with source info (comments)."""
    native.genrule(
        name = name,
        srcs = srcs,
        outs = [name + ".pb"],
        cmd = _protoc([
            "--include_imports",
            "--include_source_info",
            "--descriptor_set_out=$@",
        ], extra_imports),
        **kwargs
    )
