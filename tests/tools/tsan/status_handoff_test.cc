// An absl::Status handed from one thread to another, the way the engine
// answers the scheduler: both threads hold a copy of one heap rep, the other
// thread reads the message, and whichever copy is destroyed last frees it
// inside libabsl_status, whose atomic reference count TSan cannot see.
//
// Without `called_from_lib:libabsl_status.so` (tools/tsan/suppressions.cc)
// ThreadSanitizer reports that free as racing the read, and under
// --config=tsan (halt_on_error=1) this test fails. It exists only there.
#include <atomic>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace {

TEST(StatusHandoffTest, LastOwnerFreesAfterAnotherThreadRead) {
  absl::Status original = absl::ResourceExhaustedError(std::string(64, 'x'));
  absl::Status handed = original;  // the second reference, before the thread starts
  std::atomic<bool> reader_done{false};
  std::string read_back;
  std::thread reader([&, copy = std::move(handed)]() mutable {
    read_back = std::string(copy.message());
    copy = absl::OkStatus();  // drop this thread's reference
    // Relaxed: no happens-before edge TSan could use, as with the library's
    // own (invisible) decrement.
    reader_done.store(true, std::memory_order_relaxed);
  });
  while (!reader_done.load(std::memory_order_relaxed)) std::this_thread::yield();
  original = absl::OkStatus();  // the last reference: freed here
  reader.join();
  EXPECT_EQ(read_back.size(), 64u);
}

}  // namespace
}  // namespace xenchan
