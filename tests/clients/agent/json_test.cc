// Unit tests of the agent's strict JSON parser and serializer.
#include "clients/agent/json.h"

#include <string>

#include "gtest/gtest.h"

namespace xenchan {
namespace agent {
namespace json {
namespace {

TEST(JsonTest, ParsesScalarsAndContainers) {
  absl::StatusOr<Value> v = Parse(R"( {"a":[1,-2.5,true,false,null,"x"],"b":{}} )");
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_TRUE(v->is_object());
  const Value* a = v->Find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->array().size(), 6u);
  EXPECT_TRUE(a->array()[0].is_integer());
  EXPECT_EQ(a->array()[0].int_value(), 1);
  EXPECT_DOUBLE_EQ(a->array()[1].number_value(), -2.5);
  EXPECT_FALSE(a->array()[1].is_integer());
  EXPECT_TRUE(a->array()[2].bool_value());
  EXPECT_TRUE(a->array()[4].is_null());
  EXPECT_EQ(a->array()[5].string_value(), "x");
  EXPECT_TRUE(v->Find("b")->is_object());
  EXPECT_EQ(v->Find("c"), nullptr);
}

TEST(JsonTest, StringEscapesAndUnicode) {
  absl::StatusOr<Value> v = Parse(R"("a\"b\\c\/d\n\t\u00e9\ud83d\ude00")");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->string_value(), "a\"b\\c/d\n\t\xC3\xA9\xF0\x9F\x98\x80");
}

TEST(JsonTest, RefusesWhatIsNotStrictJson) {
  for (const char* bad : {
           "",
           " ",
           "{",
           "}",
           "[1,]",
           "{\"a\":1,}",
           "{'a':1}",
           "{\"a\" 1}",
           "01",
           "1.",
           ".5",
           "+1",
           "1e",
           "-",
           "tru",
           "nul",
           "\"abc",
           "\"a\nb\"",
           "\"\\x\"",
           "\"\\u12\"",
           "\"\\ud800\"",
           "\"\\udc00\"",
           "\"\\ud800\\u0041\"",
           "\"\xC0\xAF\"",
           "\"\xED\xA0\x80\"",
           "\"\xF5\x80\x80\x80\"",
           "\"\xE2\x82\"",
           "1 2",
           "{} x",
           "{\"a\":1,\"a\":2}",
           "1e999",
           "NaN",
           "Infinity",
           "[1]]",
       }) {
    EXPECT_FALSE(Parse(bad).ok()) << bad;
  }
}

TEST(JsonTest, DepthIsBounded) {
  std::string deep(33, '[');
  deep += std::string(33, ']');
  EXPECT_FALSE(Parse(deep).ok());
  std::string ok(32, '[');
  ok += std::string(32, ']');
  EXPECT_TRUE(Parse(ok).ok());
  std::string very_deep(100000, '[');
  EXPECT_FALSE(Parse(very_deep).ok());
}

TEST(JsonTest, SerializeIsCompactOneLineAndRoundTrips) {
  Value o = Value::MakeObject();
  o.Set("s", Value::String("line1\nline2\t\"q\"\\ \x01"));
  o.Set("i", Value::Int(-42));
  o.Set("d", Value::Double(0.5));
  o.Set("n", Value());
  o.Set("a", Value::MakeArray({Value::Bool(true), Value::Int(1)}));
  const std::string text = Serialize(o);
  EXPECT_EQ(text,
            "{\"s\":\"line1\\nline2\\t\\\"q\\\"\\\\ \\u0001\",\"i\":-42,\"d\":0.5,\"n\":null,"
            "\"a\":[true,1]}");
  absl::StatusOr<Value> back = Parse(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, o);
}

TEST(JsonTest, SerializeReplacesInvalidUtf8) {
  EXPECT_EQ(Serialize(Value::String("a\xFF"
                                    "b")),
            "\"a\xEF\xBF\xBD"
            "b\"");
  EXPECT_TRUE(Parse(Serialize(Value::String("\xC3\x28\xE2\x82"))).ok());
}

TEST(JsonTest, SetReplacesExistingMember) {
  Value o = Value::MakeObject();
  o.Set("k", Value::Int(1));
  o.Set("k", Value::Int(2));
  EXPECT_EQ(o.object().size(), 1u);
  EXPECT_EQ(o.Find("k")->int_value(), 2);
}

TEST(JsonTest, LargeIntegersAndDoubles) {
  absl::StatusOr<Value> big = Parse("9223372036854775807");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->int_value(), INT64_MAX);
  absl::StatusOr<Value> bigger = Parse("18446744073709551616");
  ASSERT_TRUE(bigger.ok());
  EXPECT_FALSE(bigger->is_integer());
  absl::StatusOr<Value> e = Parse("1e3");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->is_integer());
  EXPECT_EQ(e->int_value(), 1000);
}

}  // namespace
}  // namespace json
}  // namespace agent
}  // namespace xenchan
