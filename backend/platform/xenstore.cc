// RunInTransaction: the retry-on-conflict loop every xenstore transaction
// needs; see xenstore.h.
#include "backend/platform/xenstore.h"

#include <algorithm>

namespace xenchan {

absl::Status RunInTransaction(XenStore& xs, absl::FunctionRef<absl::Status(XsTransaction)> body,
                              int max_attempts) {
  for (int attempt = 0; attempt < std::max(max_attempts, 1); ++attempt) {
    absl::StatusOr<XsTransaction> t = xs.StartTransaction();
    if (!t.ok()) return t.status();
    absl::Status s = body(*t);
    if (!s.ok()) {
      (void)xs.EndTransaction(*t, /*commit=*/false);
      return s;
    }
    s = xs.EndTransaction(*t, /*commit=*/true);
    if (!absl::IsAborted(s)) return s;
  }
  return absl::AbortedError("xenstore transaction kept conflicting");
}

}  // namespace xenchan
