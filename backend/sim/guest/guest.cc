// The simulated guest's set-up, teardown and event loop, and RunGuestWith.
// See guest.h for the behaviour and guest_internal.h for where each part of
// the guest (xenbus, hvc_xen, the ttys, the control socket) lives; the names
// of the private methods follow the Linux functions they stand for.
#include "backend/sim/guest/guest.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "backend/platform/xenstore.h"
#include "backend/sim/guest/guest_internal.h"
#include "backend/util/errno_status.h"
#include "backend/util/make_dirs.h"
#include "backend/util/uuid.h"

namespace xenchan {
namespace sim {
namespace guest {

Guest::~Guest() {
  for (auto& c : control_clients_) close(c.fd);
  if (control_listen_ >= 0) close(control_listen_);
  for (auto& [name, dev] : devices_) {
    if (dev->info != nullptr) {
      if (dev->info->hvc != nullptr) HvcRemove(dev->info->hvc);
      FreeInfo(dev->info.get());
    }
  }
  if (primary_.pty != nullptr) {
    primary_.pty->Hangup();
    unlink(primary_.link.c_str());
  }
  if (console_log_ >= 0) close(console_log_);
  if (inotify_ >= 0) close(inotify_);
}

void Guest::Log(const std::string& message) {
  absl::FPrintF(stderr, "xensim guest %s (domid %d): %s\n", options_.name, options_.domid, message);
}

// ---------------------------------------------------------------------------
// Set-up

absl::Status Guest::Setup() {
  const std::string dev_dir = absl::StrCat(options_.root_dir, "/dev");
  if (absl::Status s = MakeDirs(absl::StrCat(dev_dir, "/xen-channel"), 0755); !s.ok()) return s;
  const std::string guest_dir = absl::StrCat(options_.state_dir, "/guests/", options_.name);
  if (absl::Status s = MakeDirs(guest_dir, 0755); !s.ok()) return s;
  // console.log, hvc0 and the tty-open counter (hvc_console.cc).
  if (absl::Status s = HvcInit(guest_dir); !s.ok()) return s;

  if (absl::Status s = ListenControl(); !s.ok()) return s;

  // xenbus_probe_frontend: watch the bus root, then enumerate what is there.
  // A resuming guest re-registers its watch (xs_resume) and resumes the
  // devices it knows instead (guest_save.cc); it does not enumerate.
  if (absl::Status s = xs_->Watch("device", kFrontendWatchToken); !s.ok()) return s;
  if (!options_.restore_state.empty()) return RestoreAndResume();
  boot_id_ = NewUuid();
  ProbeDevices();
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// The loop

absl::Status Guest::Run() {
  if (absl::Status s = Setup(); !s.ok()) return s;
  Log("running");
  while (!done_) {
    std::vector<pollfd> fds;
    enum Kind { kWatch, kEvents, kListen, kControl, kPrimary, kHvc, kTtyOpens };
    std::vector<std::pair<Kind, int>> what;  // parallel to fds: kind, index
    auto add = [&](int fd, short events, Kind kind, int index) {
      fds.push_back(pollfd{fd, events, 0});
      what.emplace_back(kind, index);
    };
    add(control_listen_, POLLIN, kListen, 0);
    for (size_t i = 0; i < control_clients_.size(); ++i) {
      add(control_clients_[i].fd, POLLIN, kControl, static_cast<int>(i));
    }
    add(primary_.pty->master_fd(), POLLIN, kPrimary, 0);
    add(inotify_, POLLIN, kTtyOpens, 0);
    if (!suspended_) {
      add(xs_->WatchFd(), POLLIN, kWatch, 0);
      add(hv_->EventFd(), POLLIN, kEvents, 0);
      for (int i = 1; i < kHvcTtyAdapters; ++i) {
        Hvc* hvc = hvc_slots_[i];
        if (hvc == nullptr) continue;
        short events = 0;
        if (!hvc->output_blocked) events |= POLLIN;
        if (hvc->input_blocked) events |= POLLOUT;
        if (events != 0) add(hvc->pty->master_fd(), events, kHvc, i);
      }
    }
    // Watch events may already be queued inside the client library; after
    // handling any, rebuild the poll set (ttys may have come or gone).
    if (!suspended_) {
      bool handled = false;
      while (std::optional<XsWatchEvent> ev = xs_->ReadWatch()) {
        HandleWatch(*ev);
        handled = true;
      }
      if (handled) continue;
    }
    const int n = poll(fds.data(), fds.size(), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(ErrnoMessage(errno, "poll"));
    }
    std::vector<int> closed_clients;
    for (size_t i = 0; i < fds.size() && !done_; ++i) {
      const short rev = fds[i].revents;
      if (rev == 0) continue;
      const auto [kind, index] = what[i];
      // A control request handled earlier in this round may have suspended
      // the guest: from then on it touches no ring, port or xenstore node.
      if (suspended_ && (kind == kWatch || kind == kEvents || kind == kHvc)) continue;
      switch (kind) {
        case kWatch:
          if (rev & (POLLERR | POLLNVAL)) return absl::UnavailableError("xenstore connection lost");
          while (std::optional<XsWatchEvent> ev = xs_->ReadWatch()) HandleWatch(*ev);
          break;
        case kEvents:
          if (rev & (POLLHUP | POLLERR | POLLNVAL)) {
            return absl::UnavailableError("hypervisor connection lost");
          }
          if (absl::Status s = HandleEvents(); s.code() == absl::StatusCode::kUnavailable) {
            return absl::UnavailableError(
                absl::StrCat("hypervisor connection lost: ", s.message()));
          }
          break;
        case kListen:
          AcceptControl();
          break;
        case kControl:
          if (!ServeControl(&control_clients_[index])) closed_clients.push_back(index);
          break;
        case kPrimary:
          PollPrimary();
          break;
        case kTtyOpens:
          HandleTtyOpens();
          break;
        case kHvc:
          // The slot may have been freed by an earlier handler this round.
          if (hvc_slots_[index] != nullptr && hvc_slots_[index]->pty->master_fd() == fds[i].fd) {
            PollHvc(hvc_slots_[index], (rev & POLLIN) != 0);
          }
          break;
      }
    }
    std::sort(closed_clients.rbegin(), closed_clients.rend());
    for (int idx : closed_clients) {
      close(control_clients_[idx].fd);
      control_clients_.erase(control_clients_.begin() + idx);
    }
  }
  Log("shut down");
  return absl::OkStatus();
}

absl::Status RunGuestWith(const GuestOptions& options, std::unique_ptr<XenStore> xenstore,
                          std::unique_ptr<GuestHypercalls> hypercalls) {
  signal(SIGPIPE, SIG_IGN);
  Guest guest(options, std::move(xenstore), std::move(hypercalls));
  return guest.Run();
}

}  // namespace guest
}  // namespace sim
}  // namespace xenchan
