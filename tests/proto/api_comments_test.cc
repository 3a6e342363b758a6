// Fails if any element of the xenchan.v1 API lacks a leading comment. The
// proto is the SDK users read, so an undocumented field is a bug.
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"

namespace {

using google::protobuf::DescriptorProto;
using google::protobuf::EnumDescriptorProto;
using google::protobuf::FileDescriptorProto;
using google::protobuf::FileDescriptorSet;

const char* g_descriptor_path = nullptr;

// Field numbers inside descriptor.proto that SourceCodeInfo paths use.
constexpr int kFileMessage = 4, kFileEnum = 5, kFileService = 6;
constexpr int kMessageField = 2, kMessageNested = 3, kMessageEnum = 4, kMessageOneof = 8;
constexpr int kEnumValue = 2, kServiceMethod = 2;

class Checker {
 public:
  explicit Checker(const FileDescriptorProto& file) : file_(file) {
    for (const auto& loc : file.source_code_info().location()) {
      std::vector<int> path(loc.path().begin(), loc.path().end());
      bool documented = false;
      for (char c : loc.leading_comments()) documented |= !isspace(static_cast<unsigned char>(c));
      comments_[path] = comments_[path] || documented;
    }
  }

  std::vector<std::string> Missing() {
    for (int i = 0; i < file_.message_type_size(); ++i) {
      Message(file_.message_type(i), {kFileMessage, i}, file_.package());
    }
    for (int i = 0; i < file_.enum_type_size(); ++i) {
      Enum(file_.enum_type(i), {kFileEnum, i}, file_.package());
    }
    for (int i = 0; i < file_.service_size(); ++i) {
      const auto& service = file_.service(i);
      const std::string name = file_.package() + "." + service.name();
      Check({kFileService, i}, "service " + name);
      for (int j = 0; j < service.method_size(); ++j) {
        Check({kFileService, i, kServiceMethod, j}, "rpc " + name + "." + service.method(j).name());
      }
    }
    return missing_;
  }

 private:
  void Check(const std::vector<int>& path, const std::string& what) {
    if (!comments_[path]) missing_.push_back(file_.name() + ": " + what);
  }
  void Message(const DescriptorProto& m, std::vector<int> path, const std::string& scope) {
    const std::string name = scope + "." + m.name();
    Check(path, "message " + name);
    auto child = [&path](int kind, int index) {
      std::vector<int> p = path;
      p.push_back(kind);
      p.push_back(index);
      return p;
    };
    for (int i = 0; i < m.field_size(); ++i) {
      Check(child(kMessageField, i), "field " + name + "." + m.field(i).name());
    }
    for (int i = 0; i < m.oneof_decl_size(); ++i) {
      // proto3 `optional` fields make synthetic oneofs that cannot carry comments.
      if (m.oneof_decl(i).name().rfind("_", 0) == 0) continue;
      Check(child(kMessageOneof, i), "oneof " + name + "." + m.oneof_decl(i).name());
    }
    for (int i = 0; i < m.nested_type_size(); ++i) {
      if (m.nested_type(i).options().map_entry()) continue;  // generated for map<>
      Message(m.nested_type(i), child(kMessageNested, i), name);
    }
    for (int i = 0; i < m.enum_type_size(); ++i) Enum(m.enum_type(i), child(kMessageEnum, i), name);
  }
  void Enum(const EnumDescriptorProto& e, std::vector<int> path, const std::string& scope) {
    const std::string name = scope + "." + e.name();
    Check(path, "enum " + name);
    for (int i = 0; i < e.value_size(); ++i) {
      std::vector<int> p = path;
      p.push_back(kEnumValue);
      p.push_back(i);
      Check(p, "enum value " + name + "." + e.value(i).name());
    }
  }

  const FileDescriptorProto& file_;
  std::map<std::vector<int>, bool> comments_;
  std::vector<std::string> missing_;
};

FileDescriptorSet Load() {
  std::ifstream in(g_descriptor_path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  FileDescriptorSet set;
  EXPECT_TRUE(set.ParseFromString(bytes)) << "cannot parse " << g_descriptor_path;
  return set;
}

TEST(ApiCommentsTest, EveryElementHasALeadingComment) {
  const FileDescriptorSet set = Load();
  int files = 0;
  std::vector<std::string> missing;
  for (const auto& file : set.file()) {
    if (file.package().rfind("xenchan.", 0) != 0) continue;
    ++files;
    ASSERT_TRUE(file.has_source_code_info()) << file.name() << " was compiled without source info";
    for (auto& m : Checker(file).Missing()) missing.push_back(m);
  }
  EXPECT_GE(files, 1) << "no xenchan protos in the descriptor set";
  for (const auto& m : missing) ADD_FAILURE() << "no leading comment: " << m;
}

// The checker itself must catch an undocumented element.
TEST(ApiCommentsTest, CheckerFlagsAnUndocumentedField) {
  FileDescriptorSet set = Load();
  for (auto& file : *set.mutable_file()) {
    if (file.package().rfind("xenchan.", 0) != 0 || file.message_type_size() == 0) continue;
    ASSERT_TRUE(Checker(file).Missing().empty());
    auto* locations = file.mutable_source_code_info()->mutable_location();
    for (auto& loc : *locations) {
      if (loc.path_size() == 2 && loc.path(0) == kFileMessage && loc.path(1) == 0) {
        loc.clear_leading_comments();
      }
    }
    EXPECT_EQ(Checker(file).Missing().size(), 1u);
    return;
  }
  FAIL() << "no xenchan message to mutate";
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 2) {
    fprintf(stderr, "usage: %s DESCRIPTOR_SET\n", argv[0]);
    return 2;
  }
  g_descriptor_path = argv[1];
  return RUN_ALL_TESTS();
}
