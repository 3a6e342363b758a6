// FleetReader: see reader.h.
#include "server/fleet/reader.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/fleet/records.h"
#include "server/log.h"

namespace xenchan {
namespace fleet {
namespace {

using server::Log;

// The compaction revision in the watch's OUT_OF_RANGE message ("... up to
// revision N"), 0 if there is none.
int64_t CompactionIn(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kOutOfRange) return 0;
  const absl::string_view m = status.message();
  const size_t at = m.rfind(' ');
  int64_t revision = 0;
  if (at == absl::string_view::npos || !absl::SimpleAtoi(m.substr(at + 1), &revision)) return 0;
  return std::max<int64_t>(revision, 0);
}

}  // namespace

absl::StatusOr<std::unique_ptr<FleetReader>> FleetReader::Start(
    std::shared_ptr<etcd::Client> client, std::string prefix, FleetReaderOptions options) {
  if (client == nullptr) return absl::InvalidArgumentError("no etcd client");
  if (absl::Status s = ValidatePrefix(prefix); !s.ok()) return s;
  std::unique_ptr<FleetReader> reader(
      new FleetReader(std::move(client), std::move(prefix), options));
  reader->thread_ = std::thread([r = reader.get()] { r->Run(); });
  return reader;
}

FleetReader::FleetReader(std::shared_ptr<etcd::Client> client, std::string prefix,
                         FleetReaderOptions options)
    : client_(std::move(client)),
      prefix_(std::move(prefix)),
      options_(options),
      view_(prefix_, options.limits, [](const std::string& key, const absl::Status& why) {
        Log("warning", "fleet: refused etcd value",
            {{"key", key}, {"error", std::string(why.message())}});
      }) {}

FleetReader::~FleetReader() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    if (watch_ != nullptr) watch_->Cancel();
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status FleetReader::Read(const std::function<void(const FleetView&)>& read) const {
  MutexLock lock(&mu_);
  if (!view_.loaded()) {
    return absl::UnavailableError("the fleet has not been read from etcd yet");
  }
  read(view_);
  return absl::OkStatus();
}

int64_t FleetReader::compacted_revision() const {
  MutexLock lock(&mu_);
  return compacted_;
}

uint64_t FleetReader::Subscribe(std::function<void()> on_change) {
  MutexLock lock(&subscribers_mu_);
  const uint64_t id = next_subscriber_++;
  subscribers_[id] = std::make_shared<std::function<void()>>(std::move(on_change));
  return id;
}

void FleetReader::Unsubscribe(uint64_t id) {
  MutexLock lock(&subscribers_mu_);  // waits for a Notify in progress
  subscribers_.erase(id);
}

void FleetReader::Notify() {
  MutexLock lock(&subscribers_mu_);
  for (const auto& [id, callback] : subscribers_) (*callback)();
}

bool FleetReader::WaitForRevision(int64_t revision, absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  MutexLock lock(&mu_);
  while (!view_.loaded() || view_.revision() < revision) {
    if (cv_.WaitWithDeadline(&mu_, deadline)) return view_.loaded() && view_.revision() >= revision;
  }
  return true;
}

void FleetReader::SetConnected(bool connected, const absl::Status& why) {
  if (connected == connected_) return;
  connected_ = connected;
  if (connected) {
    Log("info", "fleet: reading etcd again", {{"prefix", prefix_}});
  } else {
    Log("warning", "fleet: etcd unreachable; answering from the last state seen",
        {{"prefix", prefix_}, {"error", std::string(why.message())}});
  }
}

bool FleetReader::Backoff(absl::Duration delay) {
  const absl::Time until = absl::Now() + delay;
  MutexLock lock(&mu_);
  while (!stopping_) {
    if (cv_.WaitWithDeadline(&mu_, until)) break;
  }
  return !stopping_;
}

void FleetReader::NoteCompaction(const absl::Status& status) {
  const int64_t compacted = CompactionIn(status);
  MutexLock lock(&mu_);
  compacted_ = std::max(compacted_, compacted);
}

bool FleetReader::LoadSnapshot() {
  // One transaction, so that hosts and domains are read at one revision.
  auto read = client_->Txn({},
                           {etcd::Op::Get(DomainsPrefix(prefix_), /*prefix=*/true),
                            etcd::Op::Get(HostsPrefix(prefix_), /*prefix=*/true)},
                           {});
  if (!read.ok()) {
    SetConnected(false, read.status());
    return false;
  }
  SetConnected(true, absl::OkStatus());
  std::vector<etcd::KeyValue> kvs;
  for (auto& range : read->gets) {
    for (auto& kv : range) kvs.push_back(std::move(kv));
  }
  // Before the view changes, so that a WatchFleet refusing an old revision
  // can say whether etcd compacted it.
  ProbeCompaction();
  {
    MutexLock lock(&mu_);
    view_.Reset(kvs, read->revision);
    cv_.SignalAll();
  }
  Notify();
  return true;
}

void FleetReader::ProbeCompaction() {
  // etcd answers a watch from a compacted revision at once with the
  // compaction revision; otherwise the first batch of history (dropped).
  std::unique_ptr<etcd::Watch> probe = client_->WatchPrefix(prefix_, 1);
  auto first = probe->Next(options_.poll);
  probe->Cancel();
  if (!first.ok()) NoteCompaction(first.status());
}

void FleetReader::Run() {
  absl::Duration delay = options_.retry_min;
  bool need_snapshot = true;
  std::unique_ptr<etcd::Watch> watch;
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (stopping_) break;
    }
    if (need_snapshot) {
      if (!LoadSnapshot()) {
        if (!Backoff(delay)) break;
        delay = std::min(delay * 2, options_.retry_max);
        continue;
      }
      need_snapshot = false;
    }
    if (watch == nullptr) {
      int64_t from;
      {
        MutexLock lock(&mu_);
        from = view_.revision() + 1;
      }
      watch = client_->WatchPrefix(prefix_, from);
      MutexLock lock(&mu_);
      if (stopping_) break;
      watch_ = watch.get();
    }
    auto batch = watch->Next(options_.poll);
    if (batch.ok()) {
      if (batch->empty()) continue;
      delay = options_.retry_min;
      SetConnected(true, absl::OkStatus());
      {
        MutexLock lock(&mu_);
        view_.Apply(*batch);
        cv_.SignalAll();
      }
      Notify();
      continue;
    }
    {
      MutexLock lock(&mu_);
      watch_ = nullptr;
      if (stopping_) break;
    }
    watch.reset();
    if (batch.status().code() == absl::StatusCode::kOutOfRange) {
      // etcd compacted changes this reader had not seen: read everything
      // again; the differences become events.
      NoteCompaction(batch.status());
      Log("warning", "fleet: etcd compacted changes not yet seen; reading the fleet again",
          {{"prefix", prefix_}, {"error", std::string(batch.status().message())}});
      need_snapshot = true;
      continue;
    }
    // UNAVAILABLE (etcd away) or RESOURCE_EXHAUSTED (this reader fell
    // behind): watch again from the last revision seen.
    SetConnected(false, batch.status());
    if (!Backoff(delay)) break;
    delay = std::min(delay * 2, options_.retry_max);
  }
  MutexLock lock(&mu_);
  watch_ = nullptr;
}

}  // namespace fleet
}  // namespace xenchan
