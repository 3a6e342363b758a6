// kill -9 at any moment loses no committed declaration: a child process
// puts, updates and deletes declarations in a deterministic sequence and
// reports each change on a pipe once the store has returned; the parent
// SIGKILLs it after a random number of reports (in some rounds before the
// first, while the child is still creating the file), reopens the store and
// checks that it holds exactly the reported changes, or those plus the one
// change the child committed but had no time to report, and that the file
// passes integrity_check. Several rounds on the same file, each starting
// from what the last one left. No sleeps: the parent only reads the pipe.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/store/declaration_store.h"
#include "gtest/gtest.h"
#include "tests/store/store_test_util.h"

namespace xenchan {
namespace {

constexpr int kKeys = 4;     // declarations the child cycles through
constexpr int kRounds = 20;  // kill -9s per test
constexpr int kMaxReportsBeforeKill = 150;
constexpr int64_t kMaxStepsPerChild = 1000000;  // a bound; the kill comes long before

// What the child holds: key -> declaration (with its generation).
using Model = std::map<int, ChannelDeclaration>;

enum class Op : int32_t { kPut = 1, kUpdate = 2, kDelete = 3, kError = 9 };

// One committed change, as the child reports it (written whole: < PIPE_BUF).
struct Report {
  Op op;
  int32_t key;
  int64_t step;
  int64_t generation;  // 0 for a delete
};

int DomainOf(int key) { return 1 + key % 2; }
std::string ChannelOf(int key) { return absl::StrCat("org.xenchan.crash.", key); }
int KeyOf(const ChannelDeclaration& d) {
  for (int key = 0; key < kKeys; ++key) {
    if (d.domain_uuid == storetest::DomainUuid(DomainOf(key)) && d.channel_id == ChannelOf(key)) {
      return key;
    }
  }
  return -1;
}

// The change step `step` makes, given the current state.
struct Plan {
  Op op;
  int key;
  ChannelDeclaration declaration;  // kPut: all of it; kUpdate: config and last_devid
};

Plan PlanStep(int64_t step, const Model& model) {
  const int key = static_cast<int>(step % kKeys);
  const int variant = static_cast<int>(step % 1000);
  Plan plan{Op::kPut, key, storetest::SampleDeclaration(DomainOf(key), ChannelOf(key), variant)};
  if (model.count(key) != 0) {
    if (step % 7 == 0) {
      plan.op = Op::kDelete;
    } else if (step % 3 != 0) {
      plan.op = Op::kUpdate;
    }
  }
  return plan;
}

// `model` after `plan` committed with `generation`.
void Apply(const Plan& plan, int64_t generation, Model* model) {
  switch (plan.op) {
    case Op::kPut:
      (*model)[plan.key] = plan.declaration;
      (*model)[plan.key].generation = generation;
      break;
    case Op::kUpdate: {
      ChannelDeclaration& d = model->at(plan.key);
      d.config = plan.declaration.config;
      d.last_devid = plan.declaration.last_devid;
      d.generation = generation;
      break;
    }
    case Op::kDelete:
      model->erase(plan.key);
      break;
    case Op::kError:
      break;
  }
}

Model ModelOf(const std::vector<ChannelDeclaration>& declarations) {
  Model model;
  for (const ChannelDeclaration& d : declarations) model[KeyOf(d)] = d;
  return model;
}

// The child: runs steps from `first_step` on, reporting each commit on `fd`.
[[noreturn]] void RunChild(const std::string& path, int64_t first_step, int fd) {
  auto fail = [fd](const absl::Status& status) {
    fprintf(stderr, "crash test child: %s\n", status.ToString().c_str());
    const Report report{Op::kError, 0, 0, 0};
    (void)!write(fd, &report, sizeof(report));
    _exit(1);
  };
  absl::StatusOr<std::unique_ptr<DeclarationStore>> store = DeclarationStore::Open(path);
  if (!store.ok()) fail(store.status());
  absl::StatusOr<std::vector<ChannelDeclaration>> all = (*store)->ListAll();
  if (!all.ok()) fail(all.status());
  Model model = ModelOf(*all);
  for (int64_t step = first_step; step < first_step + kMaxStepsPerChild; ++step) {
    const Plan plan = PlanStep(step, model);
    const ChannelDeclaration& d = plan.declaration;
    absl::StatusOr<int64_t> generation = int64_t{0};
    if (plan.op == Op::kPut) {
      generation = (*store)->Put(d);
    } else if (plan.op == Op::kUpdate) {
      DeclarationUpdate update;
      update.config = d.config;
      update.last_devid = d.last_devid;
      generation =
          (*store)->Update(d.domain_uuid, d.channel_id, model.at(plan.key).generation, update);
    } else {
      const absl::Status deleted =
          (*store)->Delete(d.domain_uuid, d.channel_id, model.at(plan.key).generation);
      if (!deleted.ok()) generation = deleted;
    }
    if (!generation.ok()) fail(generation.status());
    Apply(plan, *generation, &model);
    const Report report{plan.op, plan.key, step, *generation};
    if (write(fd, &report, sizeof(report)) != static_cast<ssize_t>(sizeof(report))) _exit(2);
  }
  _exit(0);
}

// Reads one report; false at end of file.
bool ReadReport(int fd, Report* report) {
  char* at = reinterpret_cast<char*>(report);
  size_t got = 0;
  while (got < sizeof(*report)) {
    const ssize_t n = read(fd, at + got, sizeof(*report) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  return got == sizeof(*report);
}

std::vector<ChannelDeclaration> ListOf(const Model& model) {
  std::vector<ChannelDeclaration> out;
  for (const auto& entry : model) out.push_back(entry.second);
  return out;
}

TEST(StoreCrashTest, KillNineLosesNoReportedCommit) {
  const std::string path = storetest::NewStorePath("store_crash");
  ASSERT_FALSE(path.empty());
  const uint32_t seed = 20240612;
  std::mt19937 rng(seed);
  Model model;  // what the store holds between rounds
  int64_t unreported_commits = 0;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("seed ", seed, ", round ", round));
    // Round 0 kills before the first report (the child is creating the
    // file); round 1 right after the first commit.
    const int kill_after = round == 0   ? 0
                           : round == 1 ? 1
                                        : 1 + static_cast<int>(rng() % kMaxReportsBeforeKill);
    const int64_t first_step = int64_t{round} * kMaxStepsPerChild + 1;
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(fds[0]);
      RunChild(path, first_step, fds[1]);
    }
    close(fds[1]);
    std::vector<Report> reports;
    Report report;
    while (static_cast<int>(reports.size()) < kill_after && ReadReport(fds[0], &report)) {
      reports.push_back(report);
    }
    ASSERT_EQ(kill(child, SIGKILL), 0);
    int wstatus = 0;
    ASSERT_EQ(waitpid(child, &wstatus, 0), child);
    // Reports written before the kill are commits too.
    while (ReadReport(fds[0], &report)) reports.push_back(report);
    close(fds[0]);
    ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)
        << "the child ended by itself: status " << wstatus;

    // Replay what the child reported over the state it started from.
    int64_t step = first_step;
    int64_t newest_generation = 0;
    for (const Report& r : reports) {
      ASSERT_NE(r.op, Op::kError);
      const Plan plan = PlanStep(step, model);
      ASSERT_EQ(r.step, step);
      ASSERT_EQ(r.op, plan.op) << "step " << step;
      ASSERT_EQ(r.key, plan.key) << "step " << step;
      if (r.op != Op::kDelete) {
        ASSERT_GT(r.generation, newest_generation);
        newest_generation = r.generation;
      }
      Apply(plan, r.generation, &model);
      ++step;
    }

    absl::StatusOr<std::unique_ptr<DeclarationStore>> store = DeclarationStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    absl::StatusOr<std::vector<ChannelDeclaration>> actual = (*store)->ListAll();
    ASSERT_TRUE(actual.ok()) << actual.status();
    store->reset();
    EXPECT_EQ(storetest::RawQueryText(path, "PRAGMA integrity_check").value_or("?"), "ok");

    if (ListOf(ModelOf(*actual)) != ListOf(model)) {
      // Only the next step may have committed without its report; its
      // generation is unknown, but newer than every reported one.
      const Plan next = PlanStep(step, model);
      Model after = model;
      Apply(next, 0, &after);
      Model found = ModelOf(*actual);
      if (next.op != Op::kDelete && found.count(next.key) != 0) {
        EXPECT_GT(found[next.key].generation, newest_generation);
        found[next.key].generation = 0;
      }
      ASSERT_EQ(ListOf(found), ListOf(after))
          << "the store holds neither the reported changes nor those plus step " << step;
      ++unreported_commits;
    }
    model = ModelOf(*actual);
  }
  // How often the kill fell between a commit and its report, for the log.
  printf("%lld of %d kills fell between a commit and its report\n",
         static_cast<long long>(unreported_commits), kRounds);
}

}  // namespace
}  // namespace xenchan
