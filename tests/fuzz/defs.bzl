"""fuzz_test: a libFuzzer target whose seed corpus runs in every build, and
which CI also fuzzes for a short, fixed time."""

# How long CI fuzzes each target (ASan build, scripts/test.sh).
FUZZ_RUN_SECONDS = 20

def fuzz_test(name, srcs, corpus, deps = [], **kwargs):
    """Declares three targets for one fuzz target.

    `name`: a cc_test that runs every file of `corpus` (a list of files)
    through the target once: a regression test in every configuration.

    `<name>_libfuzzer`: the same sources linked against libFuzzer, for
    open-ended fuzzing; it needs clang, so build it with --config=asan (which
    already instruments every library for coverage) or --config=fuzz:
        bazel build --config=asan //tests/ring:console_ring_fuzz_test_libfuzzer
        bazel-bin/tests/ring/console_ring_fuzz_test_libfuzzer tests/ring/corpus

    `<name>_fuzz_run`: fuzzes `<name>_libfuzzer` for FUZZ_RUN_SECONDS from the
    seed corpus. Tagged manual (it cannot build under gcc) and `fuzz_run`, so
    that scripts/test.sh finds and runs every one of them under ASan.
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
    native.sh_test(
        name = name + "_fuzz_run",
        srcs = ["//tests/fuzz:fuzz_run.sh"],
        args = [
            "$(location :%s_libfuzzer)" % name,
            str(FUZZ_RUN_SECONDS),
            "$(locations :%s_corpus)" % name,
        ],
        data = [
            ":%s_libfuzzer" % name,
            ":%s_corpus" % name,
        ],
        size = "medium",
        tags = ["manual", "fuzz_run"],
    )
