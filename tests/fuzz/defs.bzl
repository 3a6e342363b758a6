"""fuzz_test: a libFuzzer target that also runs over its seed corpus in CI."""

def fuzz_test(name, srcs, corpus, deps = [], **kwargs):
    """`name` runs every file of `corpus` (a list of files) through the target.

    With `--config=fuzz` the same sources link against libFuzzer as
    `<name>_libfuzzer` for open-ended fuzzing:
        bazel build --config=fuzz //tests/ring:ring_fuzz_test_libfuzzer
        bazel-bin/tests/ring/ring_fuzz_test_libfuzzer tests/ring/corpus
    """
    native.filegroup(name = name + "_corpus", srcs = corpus)
    native.cc_test(
        name = name,
        srcs = srcs,
        args = ["$(locations :%s_corpus)" % name],
        data = [":%s_corpus" % name],
        deps = deps + ["//tests/fuzz:fuzz_main"],
        **kwargs
    )
    native.cc_binary(
        name = name + "_libfuzzer",
        srcs = srcs,
        copts = ["-fsanitize=fuzzer"],
        linkopts = ["-fsanitize=fuzzer"],
        deps = deps,
        tags = ["manual"],
        testonly = True,
    )
