// Tests of the audit log's JSON object builder (string escaping is tested in
// tests/util/json_string_test.cc).
#include "server/audit/json.h"

#include <string>

#include "gtest/gtest.h"

namespace xenchan {
namespace server {
namespace audit {
namespace {

TEST(JsonObjectTest, Builds) {
  EXPECT_EQ(JsonObject().Finish(), "{}");
  EXPECT_EQ(JsonObject()
                .String("event", "x\n")
                .Int("i", -5)
                .Uint("u", 18446744073709551615u)
                .Bool("t", true)
                .Bool("f", false)
                .String("k\"", "v")
                .Finish(),
            "{\"event\":\"x\\n\",\"i\":-5,\"u\":18446744073709551615,\"t\":true,\"f\":false,"
            "\"k\\\"\":\"v\"}");
}

}  // namespace
}  // namespace audit
}  // namespace server
}  // namespace xenchan
