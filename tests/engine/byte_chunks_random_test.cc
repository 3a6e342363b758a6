// Randomized test of ByteChunks against a std::string model: many random
// appends, copies, drops, clears and copies of the whole store, with sizes
// biased to chunk boundaries, from fixed seeds (deterministic, replayable by
// the seed and step printed on failure).
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>

#include "backend/engine/byte_chunks.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace {

constexpr size_t kChunk = ByteChunks::kChunkSize;

size_t ChunksFor(size_t bytes) { return (bytes + kChunk - 1) / kChunk; }

class Runner {
 public:
  explicit Runner(uint64_t seed) : rng_(seed) {}

  // A size: often at or next to a chunk boundary, otherwise small or up to
  // three chunks.
  size_t Size() {
    switch (Uniform(6)) {
      case 0:
        return Uniform(3);
      case 1:
        return kChunk - 1 + Uniform(3);
      case 2:
        return 2 * kChunk - 1 + Uniform(3);
      case 3:
        return Uniform(3 * kChunk + 1);
      default:
        return Uniform(300);
    }
  }

  size_t Uniform(size_t bound) {  // in [0, bound)
    return std::uniform_int_distribution<size_t>(0, bound - 1)(rng_);
  }

  std::string Bytes(size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng_());
    return s;
  }

  // One random operation on both, expecting them to agree afterwards.
  void Step(ByteChunks* chunks, std::string* model) {
    switch (Uniform(10)) {
      case 0:
      case 1:
      case 2: {
        const std::string data = Bytes(Size());
        chunks->Append(data);
        model->append(data);
        break;
      }
      case 3:
      case 4: {
        const size_t n = Size();
        const size_t dropped = chunks->DropFront(n);
        EXPECT_EQ(dropped, std::min(n, model->size()));
        model->erase(0, dropped);
        break;
      }
      case 5:
      case 6:
      case 7: {
        // Offsets inside, at and past the end.
        const size_t offset = Uniform(model->size() + 2 * kChunk + 1);
        const size_t max = Size();
        std::string out(max + 1, '#');
        const size_t n = chunks->CopyOut(offset, max, out.data());
        if (offset >= model->size()) {
          EXPECT_EQ(n, 0u);
        } else {
          EXPECT_EQ(n, std::min(max, model->size() - offset));
          EXPECT_EQ(out.substr(0, n), model->substr(offset, n));
        }
        EXPECT_EQ(out.substr(n), std::string(max + 1 - n, '#'));  // nothing beyond
        break;
      }
      case 8:
        if (Uniform(20) == 0) {
          chunks->Clear();
          model->clear();
          EXPECT_EQ(chunks->allocated_bytes(), 0u);
        } else if (Uniform(5) == 0) {
          chunks->ReleaseSpare();
        }
        break;
      default:
        if (Uniform(10) == 0) {
          ByteChunks copy(*chunks);
          *chunks = std::move(copy);  // the copy replaces the original
        }
        break;
    }
    // Keep the model small so that erasing its front stays cheap.
    if (model->size() > 16 * kChunk) {
      const size_t n = model->size() - 8 * kChunk;
      EXPECT_EQ(chunks->DropFront(n), n);
      model->erase(0, n);
    }
    EXPECT_EQ(chunks->size(), model->size());
    EXPECT_EQ(chunks->empty(), model->empty());
    // In use: the chunks the bytes span (one more when the front is not
    // chunk-aligned), plus at most one spare.
    EXPECT_GE(chunks->allocated_bytes(), ChunksFor(model->size()) * kChunk);
    EXPECT_LE(chunks->allocated_bytes(), (ChunksFor(model->size()) + 2) * kChunk);
  }

 private:
  std::mt19937_64 rng_;
};

TEST(ByteChunksRandomTest, AgreesWithAStringModel) {
  for (uint64_t seed : {1u, 2u, 3u, 20261205u}) {
    Runner runner(seed);
    ByteChunks chunks;
    std::string model;
    for (int step = 0; step < 20000; ++step) {
      runner.Step(&chunks, &model);
      if (::testing::Test::HasFailure()) {
        FAIL() << "seed " << seed << " step " << step;
      }
    }
    std::string all(chunks.size(), '\0');
    ASSERT_EQ(chunks.CopyOut(0, all.size(), all.data()), model.size());
    EXPECT_EQ(all, model) << "seed " << seed;
  }
}

}  // namespace
}  // namespace xenchan
