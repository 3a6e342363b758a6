// See guest_state.h.
#include "backend/sim/guest/guest_state.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace xenchan {
namespace sim {
namespace guest {
namespace {

constexpr char kHeader[] = "xensim-guest-state 1";

bool Unhex(absl::string_view hex, std::string* out) {
  if (hex == "-") {
    out->clear();
    return true;
  }
  if (hex.size() % 2 != 0) return false;
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  *out = absl::HexStringToBytes(hex);
  return true;
}

std::string Hex(absl::string_view raw) { return raw.empty() ? "-" : absl::BytesToHexString(raw); }

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("bad guest state: ", why));
}

}  // namespace

std::string EncodeSavedGuest(const SavedGuest& state) {
  std::string out = absl::StrCat(kHeader, "\n");
  absl::StrAppend(&out, "boot ", Hex(state.boot_id), " ", state.resumes, "\n");
  for (const SavedDevice& d : state.devices) {
    absl::StrAppend(&out, "device ", Hex(d.nodename), " ", Hex(d.type), " ", d.seq, " ",
                    d.bound ? 1 : 0, " ", d.vtermno, " ", d.hvc_index, " ", d.bytes_in, " ",
                    d.bytes_out, " ", Hex(d.page), "\n");
  }
  absl::StrAppend(&out, "end\n");
  return out;
}

absl::StatusOr<SavedGuest> DecodeSavedGuest(absl::string_view text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (lines.empty() || lines[0] != kHeader) return Bad("not a version 1 guest state");
  SavedGuest state;
  bool have_boot = false, have_end = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    if (have_end) return Bad("data after end");
    std::vector<absl::string_view> w = absl::StrSplit(lines[i], ' ');
    if (w[0] == "boot" && w.size() == 3 && !have_boot) {
      if (!Unhex(w[1], &state.boot_id) || !absl::SimpleAtoi(w[2], &state.resumes)) {
        return Bad("boot line");
      }
      have_boot = true;
    } else if (w[0] == "device" && w.size() == 10) {
      if (state.devices.size() >= kMaxSavedDevices) return Bad("too many devices");
      SavedDevice d;
      int bound = 0;
      if (!Unhex(w[1], &d.nodename) || !Unhex(w[2], &d.type) || !absl::SimpleAtoi(w[3], &d.seq) ||
          !absl::SimpleAtoi(w[4], &bound) || (bound != 0 && bound != 1) ||
          !absl::SimpleAtoi(w[5], &d.vtermno) || !absl::SimpleAtoi(w[6], &d.hvc_index) ||
          !absl::SimpleAtoi(w[7], &d.bytes_in) || !absl::SimpleAtoi(w[8], &d.bytes_out) ||
          !Unhex(w[9], &d.page)) {
        return Bad(absl::StrCat("device line ", i + 1));
      }
      d.bound = bound == 1;
      if (d.nodename.empty()) return Bad("device without a nodename");
      if (d.bound && d.page.size() != kSavedPageSize) return Bad("ring page of the wrong size");
      if (!d.bound && !d.page.empty()) return Bad("ring page of an unbound device");
      state.devices.push_back(std::move(d));
    } else if (w[0] == "end" && w.size() == 1) {
      have_end = true;
    } else {
      return Bad(absl::StrCat("line ", i + 1));
    }
  }
  if (!have_boot || !have_end) return Bad("truncated");
  return state;
}

}  // namespace guest
}  // namespace sim
}  // namespace xenchan
