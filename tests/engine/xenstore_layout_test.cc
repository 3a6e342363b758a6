// Unit tests of the xenstore paths in backend/engine/xenstore_layout.h.
#include "backend/engine/xenstore_layout.h"

#include "gtest/gtest.h"

namespace xenchan {
namespace {

TEST(XenstoreLayout, DomainPaths) {
  EXPECT_EQ(DomainPath(7), "/local/domain/7");
  EXPECT_EQ(DomainNamePath(7), "/local/domain/7/name");
  EXPECT_EQ(NodePath(DomainPath(7), kDomainVmNode), "/local/domain/7/vm");
  EXPECT_EQ(NodePath("/vm/abc", kVmUuidNode), "/vm/abc/uuid");
  EXPECT_EQ(DomainPath(0), NodePath(kLocalDomainDir, "0"));
}

TEST(XenstoreLayout, FrontendPaths) {
  EXPECT_EQ(FrontendDir(3), "/local/domain/3/device/console");
  EXPECT_EQ(FrontendPath(3, 2), "/local/domain/3/device/console/2");
  EXPECT_EQ(FrontendPath(3, 0), "/local/domain/3/device/console/0");
  EXPECT_EQ(NodePath(FrontendPath(3, 2), kRingRefNode),
            "/local/domain/3/device/console/2/ring-ref");
  EXPECT_EQ(NodePath(FrontendPath(3, 2), kPortNode), "/local/domain/3/device/console/2/port");
  EXPECT_EQ(NodePath(FrontendPath(3, 2), kStateNode), "/local/domain/3/device/console/2/state");
}

TEST(XenstoreLayout, LibxlPaths) {
  EXPECT_EQ(LibxlConsoleDir(12), "/libxl/12/device/console");
  EXPECT_EQ(LibxlConsolePath(12, 4), "/libxl/12/device/console/4");
}

TEST(XenstoreLayout, BackendPaths) {
  EXPECT_EQ(BackendTypeDir(0, "xenchan"), "/local/domain/0/backend/xenchan");
  EXPECT_EQ(BackendDomainDir(0, "xenchan", 3), "/local/domain/0/backend/xenchan/3");
  EXPECT_EQ(BackendPath(0, "xenchan", 3, 2), "/local/domain/0/backend/xenchan/3/2");
  EXPECT_EQ(BackendPath(5, "other", 3, 9), "/local/domain/5/backend/other/3/9");
  EXPECT_EQ(BackendTypeDir(0, kToolstackBackendType), "/local/domain/0/backend/console");
  EXPECT_EQ(NodePath(BackendPath(0, "xenchan", 3, 2), kUnpluggingNode),
            "/local/domain/0/backend/xenchan/3/2/xenchan-unplugging");
}

TEST(XenstoreLayout, ReleasedDevidsLiveBesideTheDevicesButAreNoDevid) {
  EXPECT_EQ(ReleasedDevidsDir(0, "xenchan", 3),
            "/local/domain/0/backend/xenchan/3/xenchan-released");
  EXPECT_EQ(ReleasedDevidsDir(0, "xenchan", 3),
            NodePath(BackendDomainDir(0, "xenchan", 3), kReleasedDevidsNode));
}

TEST(XenstoreLayout, NodeNamesAreSingleComponents) {
  for (const char* node :
       {kDomainNameNode, kDomainVmNode,    kVmUuidNode,        kStateNode,
        kProtocolNode,   kNameNode,        kFrontendNode,      kFrontendIdNode,
        kOnlineNode,     kConnectionNode,  kSocketPathNode,    kBackendNode,
        kBackendIdNode,  kRingRefNode,     kPortNode,          kTypeNode,
        kOutputNode,     kLimitNode,       kTtyNode,           kUidNode,
        kEpochNode,      kBufferLimitNode, kOverflowNode,      kWriteQueueLimitNode,
        kFramingNode,    kUnpluggingNode,  kReleasedDevidsNode}) {
    const std::string n = node;
    EXPECT_FALSE(n.empty());
    EXPECT_EQ(n.find('/'), std::string::npos) << n;
  }
}

}  // namespace
}  // namespace xenchan
