// Implementation of the xenstore path helpers (paths.h).
#include "backend/sim/xenstore/paths.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace xenchan::sim::xenstore {

std::string ParentOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == 0 || slash == std::string::npos) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) { return path.substr(path.rfind('/') + 1); }

std::string ChildPath(const std::string& parent, const std::string& child) {
  return parent == "/" ? absl::StrCat("/", child) : absl::StrCat(parent, "/", child);
}

bool IsChild(const std::string& child, const std::string& parent) {
  if (parent == "/") return true;
  if (!absl::StartsWith(child, parent)) return false;
  return child.size() == parent.size() || child[parent.size()] == '/';
}

std::string DomainPath(uint32_t domid) { return absl::StrCat("/local/domain/", domid); }

std::string ResolvePath(uint32_t domid, absl::string_view path) {
  if (!path.empty() && (path[0] == '/' || path[0] == '@')) {
    return std::string(path);
  }
  return absl::StrCat(DomainPath(domid), "/", path);
}

bool IsValidNodePath(absl::string_view path, size_t max_relative_path) {
  if (path.empty() || path[0] != '/') return false;
  if (path.size() > 1 && path.back() == '/') return false;
  if (absl::StrContains(path, "//")) return false;
  size_t local_off = 0;
  constexpr absl::string_view kLocal = "/local/domain/";
  if (absl::StartsWith(path, kLocal)) {
    size_t i = kLocal.size();
    size_t digits = 0;
    while (i < path.size() && digits < 5 && path[i] >= '0' && path[i] <= '9') {
      ++i;
      ++digits;
    }
    if (digits > 0 && i < path.size() && path[i] == '/') local_off = i + 1;
  }
  if (path.size() > local_off + max_relative_path) return false;
  if (path.size() > kAbsolutePathMax) return false;
  for (char ch : path) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '/' || ch == '_' || ch == '@';
    if (!ok) return false;
  }
  return true;
}

}  // namespace xenchan::sim::xenstore
