// Unit tests for ByteChunks: appends, copies and drops at and across chunk
// boundaries, refused offsets, and the single spare chunk.
#include "backend/engine/byte_chunks.h"

#include <algorithm>
#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace xenchan {
namespace {

constexpr size_t kChunk = ByteChunks::kChunkSize;

// `n` bytes whose value depends on their index (plus `salt`), so a byte
// copied from the wrong place shows.
std::string Pattern(size_t n, size_t salt = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + salt * 7 + i / 251) & 0xff);
  return s;
}

std::string CopyAll(const ByteChunks& chunks, size_t offset = 0) {
  std::string out(chunks.size() - std::min(offset, chunks.size()), '\0');
  EXPECT_EQ(chunks.CopyOut(offset, out.size(), out.data()), out.size());
  return out;
}

TEST(ByteChunksTest, EmptyHoldsNothing) {
  ByteChunks chunks;
  EXPECT_TRUE(chunks.empty());
  EXPECT_EQ(chunks.size(), 0u);
  EXPECT_EQ(chunks.allocated_bytes(), 0u);
  char c = 'x';
  EXPECT_EQ(chunks.CopyOut(0, 1, &c), 0u);
  EXPECT_EQ(c, 'x');
  EXPECT_EQ(chunks.DropFront(5), 0u);
  chunks.Append("");
  EXPECT_EQ(chunks.allocated_bytes(), 0u);  // an empty append takes no chunk
}

TEST(ByteChunksTest, ExactlyOneChunk) {
  ByteChunks chunks;
  const std::string data = Pattern(kChunk);
  chunks.Append(data);
  EXPECT_EQ(chunks.size(), kChunk);
  EXPECT_EQ(chunks.allocated_bytes(), kChunk);
  EXPECT_EQ(CopyAll(chunks), data);
  // The next byte starts a second chunk.
  chunks.Append("z");
  EXPECT_EQ(chunks.allocated_bytes(), 2 * kChunk);
  EXPECT_EQ(CopyAll(chunks), data + "z");
}

TEST(ByteChunksTest, ChunkPlusOneInOneAppend) {
  ByteChunks chunks;
  const std::string data = Pattern(kChunk + 1);
  chunks.Append(data);
  EXPECT_EQ(chunks.size(), kChunk + 1);
  EXPECT_EQ(chunks.allocated_bytes(), 2 * kChunk);
  EXPECT_EQ(CopyAll(chunks), data);
  // Copies that start just before, at and after the boundary.
  for (size_t offset : {kChunk - 1, kChunk, size_t{0}}) {
    EXPECT_EQ(CopyAll(chunks, offset), data.substr(offset)) << offset;
  }
  char two[2];
  ASSERT_EQ(chunks.CopyOut(kChunk - 1, 2, two), 2u);
  EXPECT_EQ(std::string(two, 2), data.substr(kChunk - 1, 2));
}

TEST(ByteChunksTest, OffsetsAtOrPastTheEndAreRefused) {
  ByteChunks chunks;
  chunks.Append(Pattern(kChunk + 10));
  char buf[4] = {'a', 'b', 'c', 'd'};
  EXPECT_EQ(chunks.CopyOut(kChunk + 10, 4, buf), 0u);
  EXPECT_EQ(chunks.CopyOut(kChunk + 11, 4, buf), 0u);
  EXPECT_EQ(chunks.CopyOut(~size_t{0}, 4, buf), 0u);
  EXPECT_EQ(std::string(buf, 4), "abcd");  // untouched
  // A copy running past the end is cut at the end.
  EXPECT_EQ(chunks.CopyOut(kChunk + 8, 4, buf), 2u);
  EXPECT_EQ(chunks.CopyOut(0, 0, buf), 0u);
}

TEST(ByteChunksTest, DropFrontAcrossChunks) {
  ByteChunks chunks;
  const std::string data = Pattern(3 * kChunk + 100);
  chunks.Append(data);
  EXPECT_EQ(chunks.allocated_bytes(), 4 * kChunk);
  // Leaves the front in the middle of the second chunk.
  EXPECT_EQ(chunks.DropFront(kChunk + 7), kChunk + 7);
  EXPECT_EQ(chunks.size(), data.size() - kChunk - 7);
  EXPECT_EQ(CopyAll(chunks), data.substr(kChunk + 7));
  // The freed chunk is the spare: three in use, one spare.
  EXPECT_EQ(chunks.allocated_bytes(), 4 * kChunk);
  // Exactly to the next boundary.
  EXPECT_EQ(chunks.DropFront(kChunk - 7), kChunk - 7);
  EXPECT_EQ(CopyAll(chunks), data.substr(2 * kChunk));
  EXPECT_EQ(chunks.allocated_bytes(), 3 * kChunk);  // two in use, one spare, one freed
  // Appending after drops keeps the order (wraps into the spare).
  const std::string more = Pattern(kChunk, 3);
  chunks.Append(more);
  EXPECT_EQ(CopyAll(chunks), data.substr(2 * kChunk) + more);
  // Dropping more than is held drops what is held.
  EXPECT_EQ(chunks.DropFront(10 * kChunk), kChunk + 100 + kChunk);
  EXPECT_TRUE(chunks.empty());
  EXPECT_EQ(chunks.allocated_bytes(), kChunk);  // only the spare
}

TEST(ByteChunksTest, LargeAppendsAndCopies) {
  ByteChunks chunks;
  const std::string data = Pattern(1 << 20, 1);  // 1 MiB, the default buffer limit
  chunks.Append(data.substr(0, 12345));
  chunks.Append(data.substr(12345));
  EXPECT_EQ(chunks.size(), data.size());
  EXPECT_EQ(chunks.allocated_bytes(), data.size());  // a whole number of chunks
  EXPECT_EQ(CopyAll(chunks), data);
  EXPECT_EQ(CopyAll(chunks, 777777), data.substr(777777));
  EXPECT_EQ(chunks.DropFront(data.size() - 1), data.size() - 1);
  EXPECT_EQ(CopyAll(chunks), data.substr(data.size() - 1));
  EXPECT_EQ(chunks.allocated_bytes(), 2 * kChunk);  // the last chunk and one spare
}

TEST(ByteChunksTest, SteadyStreamReusesTheSpare) {
  ByteChunks chunks;
  const std::string msg = Pattern(100);
  for (int i = 0; i < 1000; ++i) {
    chunks.Append(msg);
    char out[100];
    ASSERT_EQ(chunks.CopyOut(0, sizeof(out), out), 100u);
    ASSERT_EQ(std::string(out, 100), msg);
    ASSERT_EQ(chunks.DropFront(100), 100u);
    // Emptied at every event: the one chunk moves between use and spare.
    ASSERT_EQ(chunks.allocated_bytes(), kChunk);
  }
  // A stream larger than a chunk that drains as it goes holds at most its
  // data's chunks plus one spare.
  for (int i = 0; i < 200; ++i) {
    chunks.Append(Pattern(1500, i));
    ASSERT_EQ(chunks.DropFront(1500), 1500u);
    ASSERT_LE(chunks.allocated_bytes(), 2 * kChunk);
  }
}

TEST(ByteChunksTest, ClearAndReleaseSpareReturnMemory) {
  ByteChunks chunks;
  chunks.Append(Pattern(2 * kChunk + 1));
  chunks.Clear();
  EXPECT_TRUE(chunks.empty());
  EXPECT_EQ(chunks.allocated_bytes(), 0u);
  chunks.Append("abc");
  EXPECT_EQ(CopyAll(chunks), "abc");
  chunks.DropFront(3);
  EXPECT_EQ(chunks.allocated_bytes(), kChunk);
  chunks.ReleaseSpare();
  EXPECT_EQ(chunks.allocated_bytes(), 0u);
  chunks.Append("def");
  EXPECT_EQ(CopyAll(chunks), "def");
}

TEST(ByteChunksTest, CopiesAreIndependentAndMovedFromIsEmpty) {
  ByteChunks a;
  a.Append(Pattern(2 * kChunk + 5));
  a.DropFront(kChunk + 3);  // the front in the middle of a chunk, one spare
  ByteChunks copy(a);
  EXPECT_EQ(CopyAll(copy), Pattern(2 * kChunk + 5).substr(kChunk + 3));
  EXPECT_EQ(copy.allocated_bytes(), 2 * kChunk);  // no spare
  copy.Append("tail");
  EXPECT_EQ(a.size(), kChunk + 2);
  ByteChunks assigned;
  assigned.Append("old");
  assigned = a;
  EXPECT_EQ(CopyAll(assigned), CopyAll(a));

  ByteChunks moved = std::move(a);
  EXPECT_EQ(CopyAll(moved), Pattern(2 * kChunk + 5).substr(kChunk + 3));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): specified state
  EXPECT_EQ(a.allocated_bytes(), 0u);
  a.Append("again");
  EXPECT_EQ(CopyAll(a), "again");
  moved = std::move(a);
  EXPECT_EQ(CopyAll(moved), "again");
}

}  // namespace
}  // namespace xenchan
