// Pure helpers for xenstore paths: the tree navigation (parent, base name,
// child, "is below") and the validation and resolution rules of xenstored
// (tools/xenstore/xenstored_core.c, 4.17) that the simulated Store applies to
// every path a client sends. No state and no I/O, so they are unit-tested on
// their own.
#ifndef XENCHAN_BACKEND_SIM_XENSTORE_PATHS_H_
#define XENCHAN_BACKEND_SIM_XENSTORE_PATHS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace xenchan::sim::xenstore {

// XENSTORE_ABS_PATH_MAX: no absolute path is longer than this.
inline constexpr size_t kAbsolutePathMax = 3072;

// The parent of an absolute node path; "/" for "/" and for top-level nodes.
std::string ParentOf(const std::string& path);

// The last component of an absolute node path ("" for "/").
std::string BaseName(const std::string& path);

// The path of `child` (one component) under `parent`.
std::string ChildPath(const std::string& parent, const std::string& child);

// xenstored is_child(): `child` is `parent` or below it; everything is
// below "/".
bool IsChild(const std::string& child, const std::string& parent);

// The home of a domain, "/local/domain/<domid>", against which its relative
// paths resolve (xenstored's get_implicit_path()).
std::string DomainPath(uint32_t domid);

// Resolves a path sent by a connection of `domid`: absolute paths and "@"
// specials are returned as they are, anything else is taken relative to
// DomainPath(domid). The result is not validated.
std::string ResolvePath(uint32_t domid, absl::string_view path);

// xenstored is_valid_nodename(): starts with '/', has no "//" and no
// trailing '/', only [A-Za-z0-9-/_@], at most `max_relative_path` bytes
// after "/local/domain/N/" (XENSTORE_REL_PATH_MAX) and at most
// kAbsolutePathMax bytes in all.
bool IsValidNodePath(absl::string_view path, size_t max_relative_path);

}  // namespace xenchan::sim::xenstore

#endif  // XENCHAN_BACKEND_SIM_XENSTORE_PATHS_H_
