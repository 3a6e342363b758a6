// The API's limits are one constant each (backend/util/api_limits.h); the
// proto comments, which are the documentation SDK users read, must state the
// same numbers. Each expectation below is built from a constant, so changing
// a limit without its comment (or the other way round) fails here.
#include "backend/util/api_limits.h"

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace {

std::vector<std::string>* g_files = nullptr;

// "64 KiB", "1 MiB": how the comments write binary sizes.
std::string Human(size_t bytes) {
  if (bytes % (size_t{1} << 20) == 0) return absl::StrCat(bytes >> 20, " MiB");
  if (bytes % 1024 == 0) return absl::StrCat(bytes / 1024, " KiB");
  return absl::StrCat(bytes);
}

// All comment text of the API's proto files as one line: comment markers
// gone, line breaks as single spaces, so phrases may wrap in the source.
const std::string& CommentText() {
  static const std::string* text = [] {
    auto* out = new std::string;
    for (const std::string& path : *g_files) {
      std::ifstream in(path);
      EXPECT_TRUE(in.good()) << path;
      std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      for (absl::string_view line : absl::StrSplit(content, '\n')) {
        line = absl::StripLeadingAsciiWhitespace(line);
        if (!absl::ConsumePrefix(&line, "//")) continue;
        absl::StrAppend(out, " ", absl::StripAsciiWhitespace(line));
      }
    }
    return out;
  }();
  return *text;
}

void ExpectDocumented(const std::string& phrase) {
  EXPECT_NE(CommentText().find(phrase), std::string::npos)
      << "no proto comment says \"" << phrase << "\"";
}

TEST(ApiLimitsTest, StreamMessagesAndCalls) {
  ExpectDocumented(absl::StrCat("Data in one stream message: at most ",
                                Human(kMaxStreamMessageBytes), ", in either direction."));
  ExpectDocumented(absl::StrCat("Call: request at most ", Human(kMaxCallRequestBytes),
                                ", response at most ", Human(kMaxCallResponseBytes), "."));
  ExpectDocumented(
      absl::StrCat("0 to ", kMaxStreamMessageBytes, " (", Human(kMaxStreamMessageBytes), ")"));
  ExpectDocumented(
      absl::StrCat("0 to ", kMaxCallRequestBytes, " bytes (", Human(kMaxCallRequestBytes), ")"));
}

TEST(ApiLimitsTest, ChannelConfig) {
  ExpectDocumented(absl::StrCat("0 means the default, ", Human(kDefaultBufferLimitBytes), " (",
                                kDefaultBufferLimitBytes, "). Allowed range ", kMinBufferLimitBytes,
                                "..", kMaxBufferLimitBytes, " (", Human(kMinBufferLimitBytes), "..",
                                Human(kMaxBufferLimitBytes), ")"));
  ExpectDocumented(absl::StrCat("0 means the default, ", Human(kDefaultWriteQueueLimitBytes), " (",
                                kDefaultWriteQueueLimitBytes, "). Allowed range ",
                                kMinWriteQueueLimitBytes, "..", kMaxWriteQueueLimitBytes, " (",
                                Human(kMinWriteQueueLimitBytes), "..",
                                Human(kMaxWriteQueueLimitBytes), ")"));
}

TEST(ApiLimitsTest, NamesPagesAndChannelsPerGuest) {
  ExpectDocumented(
      absl::StrCat("page_size: default ", kDefaultPageSize, ", maximum ", kMaxPageSize, "."));
  ExpectDocumented(absl::StrCat("Channel ids: at most ", kMaxChannelIdBytes, " bytes."));
  ExpectDocumented(absl::StrCat("at most ", kMaxChannelsPerDomain, " per Linux guest."));
}

}  // namespace
}  // namespace xenchan

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  std::vector<std::string> files(argv + 1, argv + argc);
  xenchan::g_files = &files;
  return RUN_ALL_TESTS();
}
