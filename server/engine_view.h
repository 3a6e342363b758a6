// EngineView: the read-only questions the server's request handling asks the
// channel engine (a domain, a channel, a snapshot, the memory figures). The
// service answers them from the live engine (LiveEngineView); unit tests of
// the query handlers, the authorizer and the error classification answer them
// from a fixed table, without an engine or gRPC.
//
// Thread safety: implementations must be callable from any thread.
#ifndef XENCHAN_SERVER_ENGINE_VIEW_H_
#define XENCHAN_SERVER_ENGINE_VIEW_H_

#include <string>

#include "absl/status/statusor.h"
#include "backend/engine/engine.h"
#include "backend/engine/memory_budget.h"
#include "backend/engine/types.h"

namespace xenchan {
namespace server {

class EngineView {
 public:
  virtual ~EngineView() = default;
  // The domain named `domain` (name, UUID or domid); NOT_FOUND if unknown.
  virtual absl::StatusOr<DomainInfo> GetDomain(const std::string& domain) const = 0;
  // The channel `ref`; NOT_FOUND if unknown.
  virtual absl::StatusOr<ChannelInfo> GetChannel(const ChannelRef& ref) const = 0;
  // Every domain and channel, at one revision.
  virtual EngineSnapshot Snapshot() const = 0;
  // The memory budget's figures.
  virtual MemoryUsage Memory() const = 0;
};

// The view of a running engine, which must outlive it.
class LiveEngineView final : public EngineView {
 public:
  explicit LiveEngineView(const Engine* engine) : engine_(engine) {}
  absl::StatusOr<DomainInfo> GetDomain(const std::string& domain) const override {
    return engine_->GetDomain(domain);
  }
  absl::StatusOr<ChannelInfo> GetChannel(const ChannelRef& ref) const override {
    return engine_->GetChannel(ref);
  }
  EngineSnapshot Snapshot() const override { return engine_->Snapshot(); }
  MemoryUsage Memory() const override { return engine_->memory().usage; }

 private:
  const Engine* const engine_;
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_ENGINE_VIEW_H_
