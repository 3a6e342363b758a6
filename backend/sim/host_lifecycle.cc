// The simulated toolstack's domain life cycle beyond create and destroy:
// reboot (libxl_domain.c's libxl_domain_reboot and xl's restart of a domain
// that shut down with reason reboot, xl_vmcontrol.c), save and restore
// (xl_saverestore.c; libxl_dom_suspend.c suspends the guest; libxl_create.c's
// domain_create with a restore stream re-creates the domain), and migration
// to another xensim host (xl_migrate.c: sender and `migrate-receive`).
// See "Life cycle" in host.h.
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backend/sim/child_process.h"
#include "backend/sim/control.h"
#include "backend/sim/guest/guest_state.h"
#include "backend/sim/host.h"
#include "backend/sim/save_image.h"
#include "backend/util/make_dirs.h"

namespace xenchan {
namespace sim {
namespace {

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) != nullptr ? std::string(buf) : path;
}

}  // namespace

absl::StatusOr<DomainStatus> Host::RebootDomain(const std::string& domain) {
  MutexLock lock(&mu_);
  auto found = FindLocked(domain);
  if (!found.ok()) return found.status();
  Domain& d = **found;
  ReapLocked(d);
  if (d.state == State::kSuspended) {
    return absl::FailedPreconditionError(absl::StrCat("domain ", d.name, " is suspended"));
  }
  if (d.state == State::kRunning) {
    // The guest's reboot path shuts its devices down as poweroff does; the
    // domain then shuts down with reason reboot.
    WriteShutdownRequest(d, "reboot");
    auto r = GuestCommand(d, "shutdown");
    if (!r.ok()) return r.status();
    KillAndReap(d.guest_pid, 0);  // it exits by itself once it replied
    d.guest_pid = -1;
    d.state = State::kShutdown;
  }
  // xl keeps the domain's configuration and creates it again after the
  // destroy: the same name and UUID, only its own (xl.cfg) devices.
  const std::string name = d.name;
  const std::string uuid = d.uuid;
  const std::vector<ChannelSpec> specs = d.channels;
  const std::vector<std::string> texts = d.channel_texts;
  if (absl::Status s = DestroyLocked(d); !s.ok()) return s;
  return CreateLocked(name, uuid, specs, texts, "");
}

absl::Status Host::SaveLocked(Domain& d, SaveImage* image) {
  ReapLocked(d);
  if (d.state != State::kRunning) {
    return absl::FailedPreconditionError(absl::StrCat("domain ", d.name, " is not running"));
  }
  // libxl__domain_suspend: the guest suspends itself on request.
  WriteShutdownRequest(d, "suspend");
  auto r = GuestCommand(d, "suspend");
  if (!r.ok()) return r.status();
  d.state = State::kSuspended;
  const std::string state_file =
      absl::StrCat(options_.state_dir, "/guests/", d.name, "/saved-state");
  absl::StatusOr<std::string> state;
  r = GuestCommand(d, "save " + state_file);
  if (r.ok()) state = ReadSmallFile(state_file, kMaxSaveImageBytes);
  unlink(state_file.c_str());
  if (!r.ok() || !state.ok()) {
    // As a cancelled suspend: the guest carries on in this domain.
    if (GuestCommand(d, "resume").ok()) d.state = State::kRunning;
    return !r.ok() ? r.status() : state.status();
  }
  image->name = d.name;
  image->uuid = d.uuid;
  image->channels = d.channel_texts;
  image->guest_state = *std::move(state);
  return absl::OkStatus();
}

absl::Status Host::SaveDomain(const std::string& domain, const std::string& file) {
  if (file.empty()) return absl::InvalidArgumentError("save: empty file name");
  MutexLock lock(&mu_);
  auto found = FindLocked(domain);
  if (!found.ok()) return found.status();
  Domain& d = **found;
  SaveImage image;
  if (absl::Status s = SaveLocked(d, &image); !s.ok()) return s;
  if (absl::Status s = WriteSaveImage(file, image); !s.ok()) {
    if (GuestCommand(d, "resume").ok()) d.state = State::kRunning;
    return s;
  }
  // xl save without -c: the saved domain is destroyed.
  return DestroyLocked(d);
}

absl::StatusOr<DomainStatus> Host::RestoreDomain(const std::string& file) {
  absl::StatusOr<SaveImage> image = ReadSaveImage(file);
  if (!image.ok()) return image.status();
  absl::StatusOr<std::string> uuid = CheckNameAndUuid(image->name, image->uuid);
  if (!uuid.ok() || image->uuid.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": bad name or uuid in save image"));
  }
  absl::StatusOr<std::vector<ChannelSpec>> specs = ParseChannelSpecs(image->channels);
  if (!specs.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", specs.status().message()));
  }
  if (auto g = guest::DecodeSavedGuest(image->guest_state); !g.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", g.status().message()));
  }
  MutexLock lock(&mu_);
  if (absl::Status s = CheckFreeLocked(image->name, *uuid); !s.ok()) return s;
  // The memory stream, ready for the guest once it is unpaused.
  const std::string guest_dir = absl::StrCat(options_.state_dir, "/guests/", image->name);
  if (absl::Status s = MakeDirs(guest_dir, 0755); !s.ok()) return s;
  const std::string restore_state = guest_dir + "/restore-state";
  if (absl::Status s = WriteFileAtomically(restore_state, image->guest_state); !s.ok()) return s;
  absl::StatusOr<DomainStatus> st =
      CreateLocked(image->name, *uuid, *specs, image->channels, restore_state);
  if (!st.ok()) {
    unlink(restore_state.c_str());
    return st.status();
  }
  // Returns once the guest has resumed (it answers only after that).
  auto found = FindLocked(absl::StrCat(st->domid));
  if (!found.ok()) return found.status();
  auto r = GuestCommand(**found, "info");
  unlink(restore_state.c_str());
  if (!r.ok()) {
    (void)DestroyLocked(**found);
    return absl::InternalError(
        absl::StrCat("the restored guest did not resume: ", r.status().message()));
  }
  return StatusLocked(**found);
}

absl::StatusOr<std::string> Host::MigrateDomain(const std::string& domain,
                                                const std::string& dest_state_dir) {
  if (dest_state_dir.empty()) return absl::InvalidArgumentError("migrate: empty destination");
  if (RealPath(dest_state_dir) == RealPath(options_.state_dir)) {
    return absl::InvalidArgumentError("migrate: the destination is this host");
  }
  const std::string dest_control = dest_state_dir + "/control.sock";
  // xl migrate talks to the receiver before it suspends anything.
  ControlRequest hello;
  hello.verb = "list";
  if (auto r = CallControl(dest_control, hello, absl::Seconds(10)); !r.ok()) {
    return absl::UnavailableError(absl::StrCat("migrate: destination xensim at ", dest_state_dir,
                                               " is not running: ", r.status().message()));
  }
  MutexLock lock(&mu_);
  auto found = FindLocked(domain);
  if (!found.ok()) return found.status();
  Domain& d = **found;
  SaveImage image;
  if (absl::Status s = SaveLocked(d, &image); !s.ok()) return s;
  const std::string stream = absl::StrCat(options_.state_dir, "/migrate-", d.uuid, ".save");
  absl::StatusOr<std::string> reply;
  if (absl::Status s = WriteSaveImage(stream, image); !s.ok()) {
    reply = s;
  } else {
    ControlRequest restore;
    restore.verb = "restore";
    restore.args.emplace_back("file", stream);
    reply = CallControl(dest_control, restore, absl::Minutes(2));
    unlink(stream.c_str());
  }
  if (!reply.ok()) {
    // The receiver failed: the source resumes and keeps the domain.
    if (GuestCommand(d, "resume").ok()) d.state = State::kRunning;
    return absl::Status(reply.status().code(),
                        absl::StrCat("migrate: the destination failed (", reply.status().message(),
                                     "); domain ", d.name, " keeps running here"));
  }
  if (absl::Status s = DestroyLocked(d); !s.ok()) return s;
  return reply;
}

}  // namespace sim
}  // namespace xenchan
