// The channel id rule (see the header).
#include "backend/util/channel_id.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "backend/util/api_limits.h"

namespace xenchan {

absl::Status ValidateChannelId(absl::string_view id) {
  if (id.empty() || id.size() > kMaxChannelIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("channel id must be 1 to ", kMaxChannelIdBytes, " bytes, got ", id.size()));
  }
  if (!absl::ascii_isalnum(static_cast<unsigned char>(id[0]))) {
    return absl::InvalidArgumentError("channel id must start with a letter or digit");
  }
  for (char c : id) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (!absl::ascii_isalnum(u) && c != '.' && c != '_' && c != '-') {
      return absl::InvalidArgumentError("channel id may only contain [A-Za-z0-9._-]");
    }
  }
  return absl::OkStatus();
}

}  // namespace xenchan
