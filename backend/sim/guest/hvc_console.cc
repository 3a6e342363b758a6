// The simulated guest's tty side, as Linux's drivers/tty/hvc/hvc_console.c
// runs it: the hvc tty lines (hvc_alloc, hvc_remove), each a pty that
// in-guest programs open under <root>/dev, with hvc_poll moving bytes between
// a tty and its console ring, and hvc0, the primary console, whose output
// goes to console.log. Opens of the channel ttys are counted with inotify.
// See guest.h for the behaviour.
#include <errno.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "backend/platform/xenstore.h"
#include "backend/sim/guest/frontend_ring.h"
#include "backend/sim/guest/guest_internal.h"
#include "backend/sim/guest/pty.h"
#include "backend/sim/guest/xenbus_text.h"
#include "backend/util/errno_status.h"

namespace xenchan {
namespace sim {
namespace guest {
namespace {

// Points `link` at `target`, replacing whatever was there.
absl::Status ReplaceSymlink(const std::string& target, const std::string& link) {
  const std::string tmp = absl::StrCat(link, ".tmp");
  unlink(tmp.c_str());
  if (symlink(target.c_str(), tmp.c_str()) != 0 || rename(tmp.c_str(), link.c_str()) != 0) {
    const int err = errno;
    const absl::Status s =
        absl::InternalError(ErrnoMessage(err, absl::StrCat("symlink ", link, " -> ", target)));
    unlink(tmp.c_str());
    return s;
  }
  return absl::OkStatus();
}

// Removes `link` only if it still points at `target`.
void RemoveSymlinkIf(const std::string& link, const std::string& target) {
  if (link.empty()) return;
  char buf[4096];
  const ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return;
  if (std::string(buf, static_cast<size_t>(n)) == target) unlink(link.c_str());
}

}  // namespace

absl::Status Guest::HvcInit(const std::string& guest_dir) {
  const std::string dev_dir = absl::StrCat(options_.root_dir, "/dev");
  console_log_ = open(absl::StrCat(guest_dir, "/console.log").c_str(),
                      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (console_log_ < 0) {
    return absl::InternalError(ErrnoMessage(errno, "open console.log"));
  }

  // hvc0: the primary console, registered before any channel.
  absl::StatusOr<std::unique_ptr<Pty>> pty = Pty::Open();
  if (!pty.ok()) return pty.status();
  primary_.index = 0;
  primary_.vtermno = kHvcCookie;
  primary_.pty = *std::move(pty);
  primary_.link = absl::StrCat(dev_dir, "/hvc0");
  if (absl::Status s = ReplaceSymlink(primary_.pty->slave_path(), primary_.link); !s.ok()) {
    return s;
  }
  hvc_slots_[0] = &primary_;

  inotify_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_ < 0) return absl::InternalError(ErrnoMessage(errno, "inotify_init1"));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Hvc>> Guest::HvcAlloc(int vtermno, const std::string& nodename,
                                                     int want_index) {
  int index = -1;
  if (want_index > 0 && want_index < kHvcTtyAdapters && hvc_slots_[want_index] == nullptr) {
    index = want_index;
  }
  for (int i = 0; i < kHvcTtyAdapters && index < 0; ++i) {
    if (hvc_slots_[i] == nullptr) {
      index = i;
      break;
    }
  }
  if (index < 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("all ", kHvcTtyAdapters, " hvc tty lines are in use"));
  }
  absl::StatusOr<std::unique_ptr<Pty>> pty = Pty::Open();
  if (!pty.ok()) return pty.status();
  auto hvc = std::make_unique<Hvc>();
  hvc->index = index;
  hvc->vtermno = vtermno;
  hvc->pty = *std::move(pty);
  hvc->inotify_wd = inotify_add_watch(inotify_, hvc->pty->slave_path().c_str(), IN_OPEN | IN_CLOSE);
  if (hvc->inotify_wd < 0) {
    const int err = errno;
    return absl::InternalError(
        ErrnoMessage(err, absl::StrCat("inotify_add_watch ", hvc->pty->slave_path())));
  }
  const std::string dev_dir = absl::StrCat(options_.root_dir, "/dev");
  hvc->link = absl::StrCat(dev_dir, "/hvc", index);
  if (absl::Status s = ReplaceSymlink(hvc->pty->slave_path(), hvc->link); !s.ok()) {
    inotify_rm_watch(inotify_, hvc->inotify_wd);
    return s;
  }
  // The udev helper: /dev/xen-channel/<name> for a valid frontend `name`.
  absl::StatusOr<std::string> name = xs_->Read(kNoTransaction, absl::StrCat(nodename, "/name"));
  if (name.ok() && IsValidChannelName(*name)) {
    hvc->name_link = absl::StrCat(dev_dir, "/xen-channel/", *name);
    if (absl::Status s = ReplaceSymlink(absl::StrCat("../hvc", index), hvc->name_link); !s.ok()) {
      Log(s.ToString());
      hvc->name_link.clear();
    }
  }
  hvc_slots_[index] = hvc.get();
  return hvc;
}

// hvc_remove: hang up the tty and free its line.
void Guest::HvcRemove(std::unique_ptr<Hvc>& hvc) {
  if (hvc == nullptr) return;
  const std::string slave = hvc->pty->slave_path();
  if (hvc->inotify_wd >= 0) inotify_rm_watch(inotify_, hvc->inotify_wd);
  hvc->pty->Hangup();
  RemoveSymlinkIf(hvc->name_link, absl::StrCat("../hvc", hvc->index));
  RemoveSymlinkIf(hvc->link, slave);
  if (hvc->index >= 0 && hvc->index < kHvcTtyAdapters && hvc_slots_[hvc->index] == hvc.get()) {
    hvc_slots_[hvc->index] = nullptr;
  }
  hvc.reset();
}

// hvc_poll for one channel tty: push tty output into the out ring as space
// allows, deliver ring input to the tty as far as it takes it.
void Guest::PollHvc(Hvc* hvc, bool readable) {
  ConsInfo* info = VtermnoToXencons(hvc->vtermno);
  const int master = hvc->pty->master_fd();
  if (info == nullptr || info->intf == nullptr) {
    // put_chars fails: hvc throws the output away.
    if (readable) {
      char buf[256];
      (void)!read(master, buf, sizeof(buf));
    }
    return;
  }
  bool notify = false;

  // Output: tty -> out ring. Bounded per call; a pty that still has data
  // stays readable, so the loop comes back.
  for (int round = 0; round < 16; ++round) {
    absl::StatusOr<size_t> space = OutRingFree(info->intf);
    if (!space.ok()) {
      // __write_console fails with EINVAL; hvc_push throws the output away.
      if (!hvc->reported_illegal) Log("xencons: Illegal ring page indices");
      hvc->reported_illegal = true;
      hvc->output_blocked = false;
      char buf[256];
      if (read(master, buf, sizeof(buf)) <= 0) break;
      continue;
    }
    if (*space == 0) {
      hvc->output_blocked = true;
      break;
    }
    hvc->output_blocked = false;
    char buf[kOutRingSize];
    const ssize_t n = read(master, buf, std::min(*space, sizeof(buf)));
    if (n <= 0) break;  // EAGAIN, or nothing more
    absl::StatusOr<size_t> sent = WriteOutRing(info->intf, buf, static_cast<size_t>(n));
    if (!sent.ok()) break;  // indices turned illegal under us: output lost, as hvc does
    info->bytes_out += *sent;
    if (*sent > 0) notify = true;
  }

  // Input: in ring -> tty.
  absl::StatusOr<InRingView> view = PeekInRing(info->intf);
  hvc->input_blocked = false;
  if (!view.ok()) {
    if (!hvc->reported_illegal) Log("xencons: Illegal ring page indices");
    hvc->reported_illegal = true;
  } else if (view->available > 0 && hvc->open_count > 0) {
    size_t delivered = 0;
    while (delivered < view->available) {
      char buf[kInRingSize];
      const size_t n = CopyFromInRing(info->intf, *view, delivered, buf, sizeof(buf));
      const ssize_t w = write(master, buf, n);
      if (w <= 0) {
        hvc->input_blocked = true;
        break;
      }
      delivered += static_cast<size_t>(w);
    }
    if (delivered > 0) {
      ConsumeInRing(info->intf, *view, delivered);
      info->bytes_in += delivered;
      notify = true;
    }
  }
  if (notify && info->evtchn.has_value()) (void)hv_->Notify(*info->evtchn);
}

void Guest::PollAllHvcs() {
  for (int i = 1; i < kHvcTtyAdapters; ++i) {
    if (hvc_slots_[i] != nullptr) PollHvc(hvc_slots_[i], false);
  }
}

// hvc0 stays local: its output is the guest's console log.
void Guest::PollPrimary() {
  char buf[4096];
  while (true) {
    const ssize_t n = read(primary_.pty->master_fd(), buf, sizeof(buf));
    if (n <= 0) return;
    (void)!write(console_log_, buf, static_cast<size_t>(n));
  }
}

// Counts opens and closes of the channel ttys; a tty that became open gets
// its pending ring input.
void Guest::HandleTtyOpens() {
  alignas(struct inotify_event) char buf[4096];
  bool overflow = false;
  while (true) {
    const ssize_t n = read(inotify_, buf, sizeof(buf));
    if (n <= 0) break;
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const struct inotify_event*>(buf + off);
      off += sizeof(struct inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) overflow = true;
      for (int i = 1; i < kHvcTtyAdapters; ++i) {
        Hvc* hvc = hvc_slots_[i];
        if (hvc == nullptr || hvc->inotify_wd != ev->wd) continue;
        if (ev->mask & IN_OPEN) ++hvc->open_count;
        if ((ev->mask & IN_CLOSE) && hvc->open_count > 0) --hvc->open_count;
      }
    }
  }
  for (int i = 1; i < kHvcTtyAdapters; ++i) {
    if (hvc_slots_[i] == nullptr) continue;
    // Lost events: assume open rather than strand input.
    if (overflow) hvc_slots_[i]->open_count = std::max(hvc_slots_[i]->open_count, 1);
  }
  PollAllHvcs();
}

absl::Status Guest::HandleEvents() {
  // Each fired port is masked until unmasked; take what fired now and poll
  // only the consoles behind those ports (hvc_xen's interrupt handler runs
  // hvc_poll for its own tty only).
  std::vector<uint32_t> fired;
  absl::Status status;
  for (int i = 0; i < 64; ++i) {
    absl::StatusOr<std::optional<uint32_t>> p = hv_->Pending();
    if (!p.ok()) {
      status = p.status();
      break;
    }
    if (!p->has_value()) break;
    fired.push_back(**p);
  }
  for (uint32_t port : fired) {
    for (ConsInfo* info : xenconsoles_) {
      if (info->evtchn == port && info->hvc != nullptr) PollHvc(info->hvc.get(), false);
    }
  }
  for (uint32_t port : fired) (void)hv_->Unmask(port);
  return status;
}

}  // namespace guest
}  // namespace sim
}  // namespace xenchan
