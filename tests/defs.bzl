"""The test macros of xenchan: every C++ test target under tests/ is one of

  xenchan_cc_test: a gtest unit test (gtest, gmock, gtest_main and Abseil
      added; `size` small unless the test says otherwise);
  xenchan_integration_test: a test that runs processes (xensim, simulated
      guests, xenchand): the same dependencies plus the helpers of
      //tests/common, `size` medium unless the test says otherwise, and the
      `integration` tag, so `bazel test --test_tag_filters=-integration`
      runs the unit tests alone. With `fixture = True` it also gets the
      xensim + xenchand base fixture (//tests/common:xenchan_integration_test).

Fuzz targets stay fuzz_test from //tests/fuzz:defs.bzl.
"""

_TEST_DEPS = [
    "@system//:absl",
    "@system//:gmock",
    "@system//:gtest",
    "@system//:gtest_main",
]

_INTEGRATION_DEPS = [
    "//tests/common:bytes",
    "//tests/common:files",
    "//tests/common:io",
    "//tests/common:sanitizers",
]

def _with(deps, extra):
    """`deps` followed by those of `extra` it does not already name."""
    return deps + [d for d in extra if d not in deps]

def xenchan_cc_test(name, srcs, deps = [], size = "small", **kwargs):
    """A gtest unit test.

    Args:
      name: the target.
      srcs: its sources.
      deps: what it tests and uses; gtest, gmock, gtest_main and Abseil are added.
      size: Bazel's size (timeout and resource class), small by default.
      **kwargs: anything else cc_test takes (data, args, copts, tags, ...).
    """
    native.cc_test(
        name = name,
        srcs = srcs,
        deps = _with(deps, _TEST_DEPS),
        size = size,
        **kwargs
    )

def xenchan_integration_test(name, srcs, deps = [], size = "medium", tags = [], fixture = False, **kwargs):
    """A test that runs processes: xensim, simulated guests, xenchand.

    Args:
      name: the target.
      srcs: its sources.
      deps: what it uses; the test libraries and //tests/common's helpers are added.
      size: Bazel's size, medium by default (large for long end-to-end runs).
      tags: more tags; `integration` is always added.
      fixture: also add the xensim + xenchand base fixture.
      **kwargs: anything else cc_test takes.
    """
    extra = _TEST_DEPS + _INTEGRATION_DEPS
    if fixture:
        extra = extra + ["//tests/common:xenchan_integration_test"]
    native.cc_test(
        name = name,
        srcs = srcs,
        deps = _with(deps, extra),
        size = size,
        tags = _with(tags, ["integration"]),
        **kwargs
    )

# target_compatible_with for tests that run in the default configuration
# only: code the sanitizers do not instrument (Go, Python, Ansible, shell
# rigs over the default binaries) gains nothing from running again under
# --config=asan|tsan, which skip them.
DEFAULT_CONFIG_ONLY = select({
    "//tests/common:asan_build": ["//tests:never"],
    "//tests/common:tsan_build": ["//tests:never"],
    "//conditions:default": [],
})
