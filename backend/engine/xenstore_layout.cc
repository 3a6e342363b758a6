// The xenstore paths of domains and console devices (see the header).
#include "backend/engine/xenstore_layout.h"

#include "absl/strings/str_cat.h"

namespace xenchan {

std::string NodePath(absl::string_view dir, absl::string_view node) {
  return absl::StrCat(dir, "/", node);
}

std::string DomainPath(uint32_t domid) { return absl::StrCat(kLocalDomainDir, "/", domid); }

std::string DomainNamePath(uint32_t domid) { return NodePath(DomainPath(domid), kDomainNameNode); }

std::string ConsoleErrorDir(uint32_t domid) {
  return absl::StrCat(DomainPath(domid), "/error/device/console");
}

std::string DomainShutdownPath(uint32_t domid) {
  return absl::StrCat(DomainPath(domid), "/control/shutdown");
}

std::string FrontendDir(uint32_t domid) {
  return absl::StrCat(DomainPath(domid), "/device/console");
}

std::string FrontendPath(uint32_t domid, uint32_t devid) {
  return absl::StrCat(FrontendDir(domid), "/", devid);
}

std::string LibxlConsoleDir(uint32_t domid) {
  return absl::StrCat("/libxl/", domid, "/device/console");
}

std::string LibxlConsolePath(uint32_t domid, uint32_t devid) {
  return absl::StrCat(LibxlConsoleDir(domid), "/", devid);
}

std::string BackendTypeDir(uint32_t backend_domid, absl::string_view type) {
  return absl::StrCat(DomainPath(backend_domid), "/backend/", type);
}

std::string HeldDomainsDir(uint32_t backend_domid, absl::string_view type) {
  return absl::StrCat(DomainPath(backend_domid), "/", type, "/held");
}

std::string HeldDomainPath(uint32_t backend_domid, absl::string_view type, uint32_t domid) {
  return absl::StrCat(HeldDomainsDir(backend_domid, type), "/", domid);
}

std::string BackendDomainDir(uint32_t backend_domid, absl::string_view type, uint32_t domid) {
  return absl::StrCat(BackendTypeDir(backend_domid, type), "/", domid);
}

std::string BackendPath(uint32_t backend_domid, absl::string_view type, uint32_t domid,
                        uint32_t devid) {
  return absl::StrCat(BackendDomainDir(backend_domid, type, domid), "/", devid);
}

std::string ReleasedDevidsDir(uint32_t backend_domid, absl::string_view type, uint32_t domid) {
  return NodePath(BackendDomainDir(backend_domid, type, domid), kReleasedDevidsNode);
}

}  // namespace xenchan
