// Tests of AuditLog: record contents (parsed back with protobuf's JSON
// parser), hostile strings, fsync interval with an injected clock, Flush and
// Close, reopen after a rename, queue overflow accounting, file mode.
#include "server/audit/audit_log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backend/util/mutex.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"

namespace xenchan {
namespace server {
namespace audit {
namespace {

using ::google::protobuf::Struct;

constexpr absl::Duration kWait = absl::Seconds(30);

std::string TempDir() {
  const std::string dir = testcommon::MakeTempDir("audit");
  if (dir.empty()) std::abort();
  return dir;
}

using testcommon::ReadFileOrEmpty;

// The lines of `text` (which must end with a newline), each parsed as JSON.
std::vector<Struct> ParseLines(const std::string& text) {
  std::vector<Struct> records;
  if (text.empty()) return records;
  EXPECT_EQ(text.back(), '\n');
  for (absl::string_view line : absl::StrSplit(text.substr(0, text.size() - 1), '\n')) {
    Struct record;
    const auto status = google::protobuf::util::JsonStringToMessage(std::string(line), &record);
    EXPECT_TRUE(status.ok()) << status.ToString() << " in: " << line;
    records.push_back(record);
  }
  return records;
}

std::string Str(const Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  if (it == s.fields().end()) return "<missing>";
  return it->second.string_value();
}

double Num(const Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  if (it == s.fields().end()) return -1;
  return it->second.number_value();
}

// A clock the test moves by hand. Thread-safe.
class FakeClock {
 public:
  explicit FakeClock(absl::Time start) : now_(start) {}
  absl::Time Now() {
    MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    MutexLock lock(&mu_);
    now_ += d;
  }
  std::function<absl::Time()> AsFunction() {
    return [this] { return Now(); };
  }

 private:
  Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

// 2024-05-01T12:00:00.123Z
absl::Time T0() {
  return absl::FromCivil(absl::CivilSecond(2024, 5, 1, 12, 0, 0), absl::UTCTimeZone()) +
         absl::Milliseconds(123);
}

AuditOptions At(const std::string& path) {
  AuditOptions options;
  options.path = path;
  return options;
}

std::unique_ptr<AuditLog> MustOpen(AuditOptions options) {
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(std::move(options));
  EXPECT_TRUE(log.ok()) << log.status();
  if (!log.ok()) std::abort();
  return *std::move(log);
}

TEST(AuditLogTest, RecordContents) {
  const std::string path = TempDir() + "/audit.log";
  FakeClock clock(T0());
  AuditOptions options;
  options.path = path;
  options.clock = clock.AsFunction();
  std::unique_ptr<AuditLog> log = MustOpen(options);
  const Caller caller{"spiffe://example.org/controller", "ipv4:10.0.0.5:40122"};
  const std::string channel = "domains/web-1/channels/org.example.agent";
  log->Authorization(caller, "/xenchan.v1.ChannelService/Write", channel, "write", false,
                     "denied: no rule");
  log->Authorization(caller, "/xenchan.v1.ChannelService/Read", channel, "read", true,
                     "allowed by policy:3");
  log->SessionOpened(caller, "/xenchan.v1.ChannelService/Attach", channel, "s-1", "writer");
  clock.Advance(absl::Milliseconds(2500));
  log->SessionClosed(caller, "/xenchan.v1.ChannelService/Attach", channel, "s-1", 1234, 56789,
                     absl::Milliseconds(2500), "OK");
  log->Lifecycle(channel, "connected", "epoch 2");
  log->Event("policy_reload", {{"status", "OK"}, {"path", "/etc/xenchan/policy.conf"}});
  ASSERT_TRUE(log->Flush().ok());

  const std::string text = ReadFileOrEmpty(path);
  std::vector<Struct> records = ParseLines(text);
  ASSERT_EQ(records.size(), 6u) << text;

  EXPECT_EQ(Str(records[0], "ts"), "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(Str(records[0], "event"), "authz");
  EXPECT_EQ(Str(records[0], "identity"), "spiffe://example.org/controller");
  EXPECT_EQ(Str(records[0], "peer"), "ipv4:10.0.0.5:40122");
  EXPECT_EQ(Str(records[0], "method"), "/xenchan.v1.ChannelService/Write");
  EXPECT_EQ(Str(records[0], "resource"), channel);
  EXPECT_EQ(Str(records[0], "verb"), "write");
  EXPECT_EQ(Str(records[0], "decision"), "denied");
  EXPECT_EQ(Str(records[0], "reason"), "denied: no rule");
  EXPECT_EQ(Str(records[1], "decision"), "allowed");

  EXPECT_EQ(Str(records[2], "event"), "session_open");
  EXPECT_EQ(Str(records[2], "session"), "s-1");
  EXPECT_EQ(Str(records[2], "role"), "writer");

  EXPECT_EQ(Str(records[3], "event"), "session_close");
  EXPECT_EQ(Str(records[3], "ts"), "2024-05-01T12:00:02.623Z");
  EXPECT_EQ(Num(records[3], "bytes_in"), 1234);
  EXPECT_EQ(Num(records[3], "bytes_out"), 56789);
  EXPECT_EQ(Num(records[3], "duration_ms"), 2500);
  EXPECT_EQ(Str(records[3], "status"), "OK");
  EXPECT_EQ(Str(records[3], "identity"), caller.identity);

  EXPECT_EQ(Str(records[4], "event"), "lifecycle");
  EXPECT_EQ(Str(records[4], "change"), "connected");
  EXPECT_EQ(Str(records[4], "detail"), "epoch 2");

  EXPECT_EQ(Str(records[5], "event"), "policy_reload");
  EXPECT_EQ(Str(records[5], "path"), "/etc/xenchan/policy.conf");

  // Key order is stable: ts and event lead every record.
  EXPECT_EQ(text.rfind("{\"ts\":\"2024-05-01T12:00:00.123Z\",\"event\":\"authz\",", 0), 0u);
  const AuditStats stats = log->stats();
  EXPECT_EQ(stats.records_queued, 6u);
  EXPECT_EQ(stats.records_written, 6u);
  EXPECT_EQ(stats.records_dropped, 0u);
}

TEST(AuditLogTest, HostileStringsStayOnTheirLine) {
  const std::string path = TempDir() + "/audit.log";
  AuditOptions options;
  options.path = path;
  std::unique_ptr<AuditLog> log = MustOpen(options);
  const std::string hostile =
      std::string("x\"}\n{\"event\":\"authz\",\"decision\":\"allowed\"}\r\n\0\x1b[2J", 47) +
      "\xe2\x80\xa8\xff\xc3";
  log->Authorization({hostile, hostile}, hostile, hostile, "read", false, hostile);
  log->Lifecycle(hostile, hostile, hostile);
  ASSERT_TRUE(log->Flush().ok());
  const std::string text = ReadFileOrEmpty(path);
  std::vector<Struct> records = ParseLines(text);
  ASSERT_EQ(records.size(), 2u) << text;
  // Valid parts come back verbatim; the invalid bytes became U+FFFD.
  const std::string expected = hostile.substr(0, 50) + "\xef\xbf\xbd\xef\xbf\xbd";
  EXPECT_EQ(Str(records[0], "identity"), expected);
  EXPECT_EQ(Str(records[0], "resource"), expected);
  EXPECT_EQ(Str(records[0], "decision"), "denied");
  EXPECT_EQ(Str(records[1], "event"), "lifecycle");
  EXPECT_EQ(Str(records[1], "change"), expected);
}

TEST(AuditLogTest, NewFileIsPrivateAndAppendOnly) {
  const std::string dir = TempDir();
  const std::string path = dir + "/audit.log";
  {
    // Existing content is kept: the log appends.
    std::ofstream(path) << "{\"earlier\":true}\n";
  }
  std::unique_ptr<AuditLog> log = MustOpen(At(path));
  log->Lifecycle("domains/a", "appeared", "");
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(ParseLines(ReadFileOrEmpty(path)).size(), 2u);

  const std::string fresh = dir + "/fresh.log";
  std::unique_ptr<AuditLog> log2 = MustOpen(At(fresh));
  struct stat st;
  ASSERT_EQ(stat(fresh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(AuditLogTest, OpenErrors) {
  EXPECT_EQ(AuditLog::Open(At("")).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AuditLog::Open(At(TempDir() + "/no/such/dir/audit.log")).status().code(),
            absl::StatusCode::kNotFound);
  AuditOptions bad;
  bad.path = TempDir() + "/a.log";
  bad.max_queued_records = 0;
  EXPECT_EQ(AuditLog::Open(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AuditLogTest, SyncsWhenTheIntervalHasPassedOnTheInjectedClock) {
  FakeClock clock(T0());
  AuditOptions options;
  options.path = TempDir() + "/audit.log";
  // The writer re-checks every 5 ms of real time; whether a sync is due is
  // decided on the fake clock, which only the test moves.
  options.fsync_interval = absl::Milliseconds(5);
  options.clock = clock.AsFunction();
  std::unique_ptr<AuditLog> log = MustOpen(options);

  log->Lifecycle("domains/a", "appeared", "");
  log->Lifecycle("domains/a", "connected", "");
  ASSERT_TRUE(log->AwaitStats([](const AuditStats& s) { return s.records_written == 2; }, kWait));
  // Written but the interval has not passed on the clock: not synced.
  EXPECT_EQ(log->stats().syncs, 0u);
  EXPECT_EQ(ParseLines(ReadFileOrEmpty(options.path)).size(), 2u);  // written, though

  clock.Advance(absl::Milliseconds(5));
  ASSERT_TRUE(log->AwaitStats([](const AuditStats& s) { return s.syncs == 1; }, kWait));

  log->Lifecycle("domains/a", "removed", "");
  ASSERT_TRUE(log->AwaitStats([](const AuditStats& s) { return s.records_written == 3; }, kWait));
  // The last sync was 0 ms ago on the clock.
  EXPECT_EQ(log->stats().syncs, 1u);
  clock.Advance(absl::Milliseconds(4));
  log->Lifecycle("domains/b", "appeared", "");
  ASSERT_TRUE(log->AwaitStats([](const AuditStats& s) { return s.records_written == 4; }, kWait));
  EXPECT_EQ(log->stats().syncs, 1u);
  clock.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(log->AwaitStats([](const AuditStats& s) { return s.syncs == 2; }, kWait));
  // Nothing new written: no further sync however far the clock moves.
  clock.Advance(absl::Hours(1));
  log->Lifecycle("domains/b", "connected", "");  // a new batch, due at once
  ASSERT_TRUE(log->AwaitStats([](const AuditStats& s) { return s.syncs == 3; }, kWait));
  EXPECT_EQ(log->stats().records_written, 5u);
}

TEST(AuditLogTest, ZeroIntervalSyncsEveryBatch) {
  AuditOptions options;
  options.path = TempDir() + "/audit.log";
  options.fsync_interval = absl::ZeroDuration();
  std::unique_ptr<AuditLog> log = MustOpen(options);
  log->Lifecycle("domains/a", "appeared", "");
  ASSERT_TRUE(log->AwaitStats(
      [](const AuditStats& s) { return s.records_written == 1 && s.syncs == 1; }, kWait));
}

TEST(AuditLogTest, FlushAndCloseSync) {
  AuditOptions options;
  options.path = TempDir() + "/audit.log";
  options.fsync_interval = absl::Hours(1);
  std::unique_ptr<AuditLog> log = MustOpen(options);
  log->Lifecycle("domains/a", "appeared", "");
  ASSERT_TRUE(log->AwaitStats([](const AuditStats& s) { return s.records_written == 1; }, kWait));
  EXPECT_EQ(log->stats().syncs, 0u);
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(log->stats().syncs, 1u);
  // Flush with nothing new written does not sync again.
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(log->stats().syncs, 1u);

  log->Lifecycle("domains/a", "removed", "");
  log->Close();
  EXPECT_EQ(log->stats().records_written, 2u);
  EXPECT_EQ(log->stats().syncs, 2u);
  EXPECT_EQ(ParseLines(ReadFileOrEmpty(options.path)).size(), 2u);
  // After Close: refused and counted; Flush and Reopen say so.
  log->Lifecycle("domains/a", "appeared", "");
  EXPECT_EQ(log->stats().records_dropped, 1u);
  EXPECT_EQ(log->Flush().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(log->Reopen().code(), absl::StatusCode::kFailedPrecondition);
  log->Close();  // idempotent
}

TEST(AuditLogTest, ReopenAfterRename) {
  const std::string dir = TempDir();
  const std::string path = dir + "/audit.log";
  std::unique_ptr<AuditLog> log = MustOpen(At(path));
  log->Lifecycle("domains/a", "before", "");
  ASSERT_TRUE(log->Flush().ok());
  // logrotate: rename, then SIGHUP -> Reopen(). Records logged in between
  // still land in the renamed file.
  ASSERT_EQ(rename(path.c_str(), (path + ".1").c_str()), 0);
  log->Lifecycle("domains/a", "between", "");
  ASSERT_TRUE(log->Reopen().ok());
  log->Lifecycle("domains/a", "after", "");
  ASSERT_TRUE(log->Flush().ok());

  std::vector<Struct> old_records = ParseLines(ReadFileOrEmpty(path + ".1"));
  ASSERT_EQ(old_records.size(), 2u);
  EXPECT_EQ(Str(old_records[0], "change"), "before");
  EXPECT_EQ(Str(old_records[1], "change"), "between");
  std::vector<Struct> new_records = ParseLines(ReadFileOrEmpty(path));
  ASSERT_EQ(new_records.size(), 1u);
  EXPECT_EQ(Str(new_records[0], "change"), "after");
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(log->stats().reopens, 1u);
}

TEST(AuditLogTest, FailedReopenKeepsWritingToTheOldFile) {
  const std::string dir = TempDir();
  const std::string path = dir + "/audit.log";
  std::unique_ptr<AuditLog> log = MustOpen(At(path));
  ASSERT_EQ(rename(path.c_str(), (dir + "/rotated.log").c_str()), 0);
  // The path can no longer be created as a file.
  ASSERT_EQ(mkdir(path.c_str(), 0700), 0);
  absl::Status status = log->Reopen();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr(path));
  log->Lifecycle("domains/a", "still-logged", "");
  ASSERT_TRUE(log->Flush().ok());
  std::vector<Struct> records = ParseLines(ReadFileOrEmpty(dir + "/rotated.log"));
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(Str(records[0], "change"), "still-logged");
  EXPECT_EQ(log->stats().reopens, 0u);
}

// The writer blocks on a FIFO nobody reads, so the queue fills: records are
// refused and counted, and once the reader drains the FIFO every accepted
// record arrives followed by one notice with the exact count.
TEST(AuditLogTest, QueueOverflowIsCountedAndReported) {
  const std::string path = TempDir() + "/audit.fifo";
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  const int reader = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  AuditOptions options;
  options.path = path;
  options.max_queued_records = 8;
  std::unique_ptr<AuditLog> log = MustOpen(options);

  const std::string padding(1000, 'p');
  uint64_t calls = 0;
  const absl::Time deadline = absl::Now() + kWait;
  while (log->stats().records_dropped < 100) {
    ASSERT_LT(absl::Now(), deadline);
    log->Lifecycle(absl::StrCat("domains/d", calls), "appeared", padding);
    ++calls;
  }
  // Drain the FIFO in the background (blocking reads now that the writer
  // has it open) while the log finishes; EOF when the log closes it.
  ASSERT_EQ(fcntl(reader, F_SETFL, 0), 0);
  std::string received;
  std::thread drain([&] {
    char buf[65536];
    while (true) {
      const ssize_t n = read(reader, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      received.append(buf, static_cast<size_t>(n));
    }
  });
  log->Close();
  drain.join();
  close(reader);

  const AuditStats stats = log->stats();
  EXPECT_EQ(stats.records_queued + stats.records_dropped, calls);
  EXPECT_GE(stats.records_dropped, 100u);
  EXPECT_EQ(stats.records_written, stats.records_queued);
  EXPECT_EQ(stats.records_lost, 0u);
  std::vector<Struct> records = ParseLines(received);
  uint64_t lifecycle = 0;
  uint64_t reported = 0;
  for (const Struct& r : records) {
    if (Str(r, "event") == "lifecycle") ++lifecycle;
    if (Str(r, "event") == "audit_records_dropped")
      reported += static_cast<uint64_t>(Num(r, "count"));
  }
  EXPECT_EQ(lifecycle, stats.records_queued);
  EXPECT_EQ(reported, stats.records_dropped);
  EXPECT_EQ(stats.drop_notices, records.size() - lifecycle);
  EXPECT_GE(stats.drop_notices, 1u);
}

TEST(AuditLogTest, ConcurrentWritersLoseNothing) {
  AuditOptions options;
  options.path = TempDir() + "/audit.log";
  options.fsync_interval = absl::Milliseconds(1);
  std::unique_ptr<AuditLog> log = MustOpen(options);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&log, t] {
      for (int i = 0; i < kPerThread; ++i) {
        log->SessionClosed({absl::StrCat("cn:t", t), "unix:"}, "/m", "domains/a/channels/c",
                           absl::StrCat(t, "-", i), i, i, absl::Milliseconds(i), "OK");
      }
    });
  }
  for (std::thread& th : threads) th.join();
  log->Close();
  const AuditStats stats = log->stats();
  EXPECT_EQ(stats.records_queued + stats.records_dropped, uint64_t{kThreads * kPerThread});
  std::vector<Struct> records = ParseLines(ReadFileOrEmpty(options.path));
  uint64_t sessions = 0;
  uint64_t reported = 0;
  for (const Struct& r : records) {
    if (Str(r, "event") == "session_close") ++sessions;
    if (Str(r, "event") == "audit_records_dropped")
      reported += static_cast<uint64_t>(Num(r, "count"));
  }
  EXPECT_EQ(sessions, stats.records_queued);
  EXPECT_EQ(reported, stats.records_dropped);
}

}  // namespace
}  // namespace audit
}  // namespace server
}  // namespace xenchan
