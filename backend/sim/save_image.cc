// See save_image.h.
#include "backend/sim/save_image.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backend/util/errno_status.h"

namespace xenchan {
namespace sim {
namespace {

constexpr char kHeader[] = "xensim-save 1";

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

absl::Status FileError(int err, const std::string& what, const std::string& path) {
  return ErrnoToStatus(err, absl::StrCat(what, " ", path));
}

}  // namespace

std::string EncodeSaveImage(const SaveImage& image) {
  std::string out = absl::StrCat(kHeader, "\n");
  absl::StrAppend(&out, "name ", Hex(image.name), "\n", "uuid ", Hex(image.uuid), "\n");
  for (const std::string& c : image.channels) absl::StrAppend(&out, "channel ", Hex(c), "\n");
  absl::StrAppend(&out, "guest ", Hex(image.guest_state), "\n", "end\n");
  return out;
}

absl::StatusOr<SaveImage> DecodeSaveImage(absl::string_view text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (lines.empty() || lines[0] != kHeader) {
    return absl::InvalidArgumentError("not a xensim save image (no \"xensim-save 1\" header)");
  }
  SaveImage image;
  bool name = false, uuid = false, guest = false, end = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    std::vector<absl::string_view> w = absl::StrSplit(lines[i], ' ');
    std::string value;
    if (end || w.size() != (w[0] == "end" ? 1u : 2u) || (w.size() == 2 && !Unhex(w[1], &value))) {
      return absl::InvalidArgumentError(absl::StrCat("bad save image: line ", i + 1));
    }
    if (w[0] == "name" && !name) {
      image.name = value;
      name = true;
    } else if (w[0] == "uuid" && !uuid) {
      image.uuid = value;
      uuid = true;
    } else if (w[0] == "channel") {
      image.channels.push_back(value);
    } else if (w[0] == "guest" && !guest) {
      image.guest_state = value;
      guest = true;
    } else if (w[0] == "end") {
      end = true;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("bad save image: line ", i + 1));
    }
  }
  if (!name || !uuid || !guest || !end) {
    return absl::InvalidArgumentError("bad save image: truncated");
  }
  return image;
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FileError(errno, "open", path);
  std::string data;
  char buf[65536];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return FileError(err, "read", path);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > max_bytes) {
      close(fd);
      return absl::InvalidArgumentError(absl::StrCat(path, ": larger than ", max_bytes, " bytes"));
    }
  }
  close(fd);
  return data;
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view data) {
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return FileError(errno, "create", tmp);
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return FileError(err, "write", tmp);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    return FileError(err, "write", path);
  }
  return absl::OkStatus();
}

absl::Status WriteSaveImage(const std::string& path, const SaveImage& image) {
  return WriteFileAtomically(path, EncodeSaveImage(image));
}

absl::StatusOr<SaveImage> ReadSaveImage(const std::string& path) {
  absl::StatusOr<std::string> text = ReadSmallFile(path, kMaxSaveImageBytes);
  if (!text.ok()) return text.status();
  absl::StatusOr<SaveImage> image = DecodeSaveImage(*text);
  if (!image.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", image.status().message()));
  }
  return image;
}

}  // namespace sim
}  // namespace xenchan
