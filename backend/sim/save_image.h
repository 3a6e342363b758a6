// The simulated toolstack's save image: what `xensim domain save` writes
// and `domain restore` / an incoming migration read. As with xl's save file
// (tools/xl/xl_saverestore.c: a header, then the domain's configuration,
// then libxl's stream of the guest's memory), the image carries the
// toolstack's own configuration of the domain (name, UUID, its xl.cfg
// channels: never channels hot-added by others, which libxl does not know)
// followed by the guest's state (backend/sim/guest/guest_state.h, opaque
// here).
//
// Encoding: text lines, "xensim-save 1" first; values are hex so any byte
// is safe. Pure functions, thread-safe; ReadSaveImage/WriteSaveImage do
// file I/O (the write is atomic: a temporary file renamed into place).
#ifndef XENCHAN_BACKEND_SIM_SAVE_IMAGE_H_
#define XENCHAN_BACKEND_SIM_SAVE_IMAGE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace xenchan {
namespace sim {

struct SaveImage {
  std::string name;
  std::string uuid;
  std::vector<std::string> channels;  // xl.cfg channel specs, in order
  std::string guest_state;            // the guest's own encoding
};

inline constexpr size_t kMaxSaveImageBytes = 16 * 1024 * 1024;

std::string EncodeSaveImage(const SaveImage& image);
// INVALID_ARGUMENT "not a xensim save image" / naming the bad part.
absl::StatusOr<SaveImage> DecodeSaveImage(absl::string_view text);

absl::Status WriteSaveImage(const std::string& path, const SaveImage& image);
// NOT_FOUND / PERMISSION_DENIED etc. for the file, INVALID_ARGUMENT for its
// content; messages name the file.
absl::StatusOr<SaveImage> ReadSaveImage(const std::string& path);

// Reads a whole (small) file; errors name the file.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes);
// Writes `data` to `path` atomically (temporary file, fsync, rename).
absl::Status WriteFileAtomically(const std::string& path, absl::string_view data);

}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_SAVE_IMAGE_H_
