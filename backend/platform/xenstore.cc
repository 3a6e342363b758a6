// RunInTransaction: the retry-on-conflict loop every xenstore transaction
// needs, and DiscardTransaction, its body's way to drop a transaction on
// purpose; see xenstore.h.
#include "backend/platform/xenstore.h"

#include <algorithm>

#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"

namespace xenchan {
namespace {

// The payload that tells DiscardTransaction() from any other CANCELLED.
constexpr absl::string_view kDiscardPayload = "xenchan/xenstore/discard-transaction";

bool IsDiscard(const absl::Status& s) {
  return absl::IsCancelled(s) && s.GetPayload(kDiscardPayload).has_value();
}

}  // namespace

absl::Status DiscardTransaction() {
  absl::Status s = absl::CancelledError("xenstore transaction discarded on purpose");
  s.SetPayload(kDiscardPayload, absl::Cord());
  return s;
}

absl::Status RunInTransaction(XenStore& xs, absl::FunctionRef<absl::Status(XsTransaction)> body,
                              int max_attempts) {
  for (int attempt = 0; attempt < std::max(max_attempts, 1); ++attempt) {
    absl::StatusOr<XsTransaction> t = xs.StartTransaction();
    if (!t.ok()) return t.status();
    absl::Status s = body(*t);
    if (!s.ok()) {
      (void)xs.EndTransaction(*t, /*commit=*/false);
      return IsDiscard(s) ? absl::OkStatus() : s;
    }
    s = xs.EndTransaction(*t, /*commit=*/true);
    if (!absl::IsAborted(s)) return s;
  }
  return absl::AbortedError("xenstore transaction kept conflicting");
}

}  // namespace xenchan
