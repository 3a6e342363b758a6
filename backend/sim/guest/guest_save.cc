// The simulated guest's side of `xl save` / `xl restore` and migration: the
// state a suspended guest hands to the toolstack (Guest::Save), and the
// resume of that state in a new domain (Guest::RestoreAndResume), as Linux
// runs it in drivers/xen/manage.c's do_suspend (not cancelled: xs_resume,
// then dpm_resume_end, which calls xenbus_frontend_dev_resume ->
// xenbus_dev_resume -> hvc_xen.c's xencons_resume for each bound device in
// registration order). The image format is in guest_state.h; what happens
// to a device whose frontend directory is missing is described in guest.h.
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backend/sim/guest/guest_internal.h"
#include "backend/sim/guest/guest_state.h"
#include "backend/util/errno_status.h"

namespace xenchan {
namespace sim {
namespace guest {

std::string Guest::Save(const std::string& path) {
  SavedGuest state;
  state.boot_id = boot_id_;
  state.resumes = resumes_;
  std::vector<const XenbusDevice*> devs;
  for (const auto& [nodename, dev] : devices_) devs.push_back(dev.get());
  std::sort(devs.begin(), devs.end(),
            [](const XenbusDevice* a, const XenbusDevice* b) { return a->seq < b->seq; });
  for (const XenbusDevice* dev : devs) {
    SavedDevice d;
    d.nodename = dev->nodename;
    d.type = dev->type;
    d.seq = dev->seq;
    const ConsInfo* info = dev->info.get();
    d.bound = dev->bound && info != nullptr && info->intf != nullptr;
    if (d.bound) {
      d.vtermno = info->vtermno;
      d.hvc_index = info->hvc != nullptr ? info->hvc->index : -1;
      d.bytes_in = info->bytes_in;
      d.bytes_out = info->bytes_out;
      d.page.assign(reinterpret_cast<const char*>(info->intf), kSavedPageSize);
    }
    state.devices.push_back(std::move(d));
  }
  const std::string text = EncodeSavedGuest(state);
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::StrCat("error ", ErrnoMessage(errno, "open " + tmp), "\n");
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return absl::StrCat("error ", ErrnoMessage(err, "write " + tmp), "\n");
    }
    off += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    return absl::StrCat("error ", ErrnoMessage(err, "save " + path), "\n");
  }
  return absl::StrCat("ok saved ", state.devices.size(), "\n");
}

absl::Status Guest::RestoreAndResume() {
  std::ifstream in(options_.restore_state, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot read restore state " + options_.restore_state);
  std::stringstream buf;
  buf << in.rdbuf();
  absl::StatusOr<SavedGuest> state = DecodeSavedGuest(buf.str());
  if (!state.ok()) return state.status();
  boot_id_ = state->boot_id;
  resumes_ = state->resumes;
  restored_ = true;
  // The device list as it was in memory: every device stays registered.
  for (const SavedDevice& saved : state->devices) {
    if (FindDevice(saved.nodename) != nullptr) continue;
    auto dev = std::make_unique<XenbusDevice>();
    dev->nodename = saved.nodename;
    dev->type = saved.type;
    dev->seq = next_seq_++;
    dev->state = kStateConnected;  // overwritten by xenbus_dev_resume
    if (saved.bound) {
      auto info = std::make_unique<ConsInfo>();
      info->vtermno = saved.vtermno;
      info->bytes_in = saved.bytes_in;
      info->bytes_out = saved.bytes_out;
      info->memfd = memfd_create("xencons-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
      void* page = MAP_FAILED;
      if (info->memfd >= 0 && ftruncate(info->memfd, kPageSize) == 0) {
        page = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, info->memfd, 0);
      }
      if (page == MAP_FAILED) {
        FreeInfo(info.get());
        return absl::InternalError(ErrnoMessage(errno, "restoring a ring page"));
      }
      info->intf = static_cast<xencons_interface*>(page);
      std::memcpy(page, saved.page.data(), kPageSize);
      if (saved.hvc_index > 0) {
        // The tty line the device had; in-guest programs reopen it (the
        // simulated guest is a new process, so its pty is new).
        absl::StatusOr<std::unique_ptr<Hvc>> hvc =
            HvcAlloc(info->vtermno, saved.nodename, saved.hvc_index);
        if (hvc.ok()) {
          info->hvc = *std::move(hvc);
        } else {
          Log(absl::StrCat(saved.nodename, ": hvc_alloc: ", hvc.status().ToString()));
        }
      }
      xenconsoles_.push_back(info.get());
      dev->info = std::move(info);
      dev->bound = true;
    }
    devices_[saved.nodename] = std::move(dev);
  }
  // The resume itself, in registration order.
  std::vector<XenbusDevice*> devs;
  for (auto& [nodename, dev] : devices_) {
    if (dev->bound) devs.push_back(dev.get());
  }
  std::sort(devs.begin(), devs.end(),
            [](const XenbusDevice* a, const XenbusDevice* b) { return a->seq < b->seq; });
  std::vector<std::string> failed;
  for (XenbusDevice* dev : devs) {
    if (DevResume(dev) != 0) failed.push_back(dev->nodename);
  }
  ++resumes_;
  Log(absl::StrCat("restored: resumed ", devs.size() - failed.size(), " of ", devs.size(),
                   failed.empty() ? "" : " (failed: ", absl::StrJoin(failed, ","),
                   failed.empty() ? "" : ")"));
  return absl::OkStatus();
}

}  // namespace guest
}  // namespace sim
}  // namespace xenchan
