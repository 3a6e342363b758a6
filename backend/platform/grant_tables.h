// Mapping pages that a guest granted to us: the backend half of xengnttab.h.
// Implementations: XenGrantTables (libxengnttab) and SimGrantTables (xensim).
#ifndef XENCHAN_BACKEND_PLATFORM_GRANT_TABLES_H_
#define XENCHAN_BACKEND_PLATFORM_GRANT_TABLES_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

namespace xenchan {

inline constexpr size_t kXenPageSize = 4096;

// One mapped foreign page. Unmapped when destroyed. The memory is shared with
// a guest that may change any byte at any time: read it only through
// snapshots (see backend/ring).
class GrantMapping {
 public:
  virtual ~GrantMapping() = default;
  // kXenPageSize bytes, valid until this object is destroyed.
  virtual void* data() const = 0;
};

// Thread safety: Map may be called from any thread; a mapping is used by one.
// Blocking: a system call, never a wait for the guest.
class GrantTables {
 public:
  virtual ~GrantTables() = default;
  // Maps grant `ref` of domain `domid`, read-write if `writable`.
  // PERMISSION_DENIED or INVALID_ARGUMENT if the grant is not for us, does
  // not exist, or is read-only but `writable` was asked; NOT_FOUND if the
  // domain does not exist.
  virtual absl::StatusOr<std::unique_ptr<GrantMapping>> Map(uint32_t domid, uint32_t ref,
                                                            bool writable) = 0;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_GRANT_TABLES_H_
