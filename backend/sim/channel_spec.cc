// See channel_spec.h.
#include "backend/sim/channel_spec.h"

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace xenchan {
namespace sim {

const char* ChannelConnectionName(ChannelConnection c) {
  return c == ChannelConnection::kSocket ? "socket" : "pty";
}

bool IsValidChannelName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxChannelNameLength) return false;
  for (char c : name) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<ParsedChannelSpec> ParseChannelSpec(absl::string_view text) {
  ParsedChannelSpec out;
  std::optional<std::string> name, connection, path, backend;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("channel spec item '", absl::CHexEscape(item), "' is not KEY=VALUE"));
    }
    const absl::string_view key = absl::StripAsciiWhitespace(item.substr(0, eq));
    const std::string value(absl::StripAsciiWhitespace(item.substr(eq + 1)));
    if (key == "name") {
      name = value;
    } else if (key == "connection") {
      connection = value;
    } else if (key == "path") {
      path = value;
    } else if (key == "backend") {
      backend = value;
    } else {
      out.warnings.push_back(
          absl::StrCat("Unknown string \"", absl::CHexEscape(key), "\" in channel spec, ignored"));
    }
  }

  if (backend.has_value() && *backend != "0" && *backend != "dom0" && *backend != "Domain-0") {
    return absl::InvalidArgumentError(
        absl::StrCat("channel backend '", absl::CHexEscape(*backend),
                     "' is not supported (only the toolstack domain: 0, dom0, Domain-0)"));
  }
  if (!name.has_value()) return absl::InvalidArgumentError("channel has no name");
  if (!IsValidChannelName(*name)) {
    return absl::InvalidArgumentError(absl::StrCat("channel name '", absl::CHexEscape(*name),
                                                   "' is invalid: want [A-Za-z0-9._-]{1,",
                                                   kMaxChannelNameLength, "}"));
  }
  out.spec.name = *name;
  if (!connection.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("channel ", *name, " has no connection"));
  }
  if (*connection == "pty") {
    out.spec.connection = ChannelConnection::kPty;
  } else if (*connection == "socket") {
    out.spec.connection = ChannelConnection::kSocket;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown channel connection '", absl::CHexEscape(*connection), "'"));
  }
  if (out.spec.connection == ChannelConnection::kSocket) {
    if (!path.has_value() || path->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("channel ", *name, ": connection=socket requires a path"));
    }
    if (path->size() > kMaxSocketPathLength) {
      return absl::InvalidArgumentError(absl::StrCat(
          "channel ", *name, ": socket path is longer than ", kMaxSocketPathLength, " bytes"));
    }
    if (path->find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("channel ", *name, ": socket path contains NUL"));
    }
    out.spec.path = *path;
  } else if (path.has_value()) {
    out.warnings.push_back(absl::StrCat("channel ", *name, ": path is ignored for connection=pty"));
  }
  return out;
}

}  // namespace sim
}  // namespace xenchan
