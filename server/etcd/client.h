// A small client for etcd's v3 gRPC API (etcdserverpb: KV, Lease, Watch; Txn
// through KV), for xenchan's fleet (issue 13). It offers what the fleet
// needs and no more: get and put, prefix reads and deletes, guarded
// transactions, leases with keep-alive, and prefix watches, with
// absl::Status errors. etcd's own protos are generated from Debian's copy
// (//third_party/etcd_api); nothing of etcd's client code is used.
//
// Endpoints are tried in turn: a call that finds its member UNAVAILABLE is
// sent once to each of the others before it fails, so one member down costs
// one failed attempt, not an error. Each call has a deadline
// (ClientOptions::rpc_timeout), so a partitioned etcd never blocks a caller
// for longer.
//
// etcd is not trusted more than a guest: a response bigger than
// max_response_bytes is refused by gRPC, keys and values are returned as
// bytes for the caller to validate, and range reads are bounded.
#ifndef XENCHAN_SERVER_ETCD_CLIENT_H_
#define XENCHAN_SERVER_ETCD_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace xenchan {
namespace etcd {

struct ClientOptions {
  // etcd members: "unix:///path", "http://host:port" or "https://host:port"
  // ("host:port" means http). At least one. https needs ca_file.
  std::vector<std::string> endpoints;
  // TLS (production etcd clusters require client certificates): the CA that
  // signed the members' certificates, and our certificate and key.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // Every call's deadline.
  absl::Duration rpc_timeout = absl::Seconds(5);
  // The largest response accepted (gRPC refuses bigger ones).
  int max_response_bytes = 16 << 20;
};

// One key as etcd reports it.
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;  // 0 never appears for a live key
  int64_t lease = 0;
};

// A range read and the store revision it was read at.
struct Range {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;
  bool more = false;  // the limit cut it short
};

// One condition of a transaction.
struct Compare {
  enum class Target { kVersion, kCreateRevision, kModRevision, kValue };
  enum class Result { kEqual, kNotEqual, kGreater, kLess };
  std::string key;
  Target target = Target::kVersion;
  Result result = Result::kEqual;
  int64_t number = 0;  // for the revision and version targets
  std::string value;   // for kValue

  // The key does not exist (version 0).
  static Compare Missing(std::string key);
  // The key was last written at `mod_revision` (0: does not exist).
  static Compare ModRevisionIs(std::string key, int64_t mod_revision);
};

// One operation of a transaction.
struct Op {
  enum class Kind { kPut, kDelete, kGet };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;    // kPut
  int64_t lease = 0;    // kPut: attach to this lease (0: none)
  bool prefix = false;  // kDelete, kGet: every key starting with `key`

  static Op Put(std::string key, std::string value, int64_t lease = 0);
  static Op Delete(std::string key, bool prefix = false);
  static Op Get(std::string key, bool prefix = false);
};

struct TxnResult {
  bool succeeded = false;
  int64_t revision = 0;
  // One entry per kGet operation of the branch taken, in order.
  std::vector<std::vector<KeyValue>> gets;
};

// A watch event.
struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for kDelete only key and mod_revision are meaningful
};

// One stream of events for a key prefix. Next and Cancel may be called from
// different threads; Next from one thread at a time.
class Watch {
 public:
  virtual ~Watch() = default;
  // The next batch of events, in revision order, waiting up to `timeout`
  // (an empty batch when none came). OUT_OF_RANGE (with the compaction
  // revision in the message) if the start revision was compacted away:
  // re-read and watch from the read's revision + 1; UNAVAILABLE when the
  // stream broke (watch again from the last revision seen + 1); CANCELLED
  // after Cancel.
  virtual absl::StatusOr<std::vector<Event>> Next(absl::Duration timeout) = 0;
  // Ends the stream; a Next in progress returns CANCELLED.
  virtual void Cancel() = 0;
};

// Thread-safe: every method may be called from any thread.
class Client {
 public:
  // INVALID_ARGUMENT for no or malformed endpoints; NOT_FOUND or
  // INVALID_ARGUMENT for TLS files that cannot be read. Connects lazily:
  // an etcd that is down is not an error here.
  static absl::StatusOr<std::unique_ptr<Client>> Create(const ClientOptions& options);
  virtual ~Client() = default;

  // The key, or nullopt if it does not exist.
  virtual absl::StatusOr<std::optional<KeyValue>> Get(const std::string& key) = 0;
  // Keys starting with `prefix` in key order, at most `limit` (0: no limit
  // but max_response_bytes).
  virtual absl::StatusOr<Range> GetPrefix(const std::string& prefix, int64_t limit = 0) = 0;
  // The store revision after the write.
  virtual absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value,
                                      int64_t lease = 0) = 0;
  // The number of keys deleted.
  virtual absl::StatusOr<int64_t> Delete(const std::string& key, bool prefix = false) = 0;
  virtual absl::StatusOr<TxnResult> Txn(const std::vector<Compare>& compares,
                                        const std::vector<Op>& success,
                                        const std::vector<Op>& failure) = 0;

  // A lease of `ttl` (whole seconds, at least 1); its ID.
  virtual absl::StatusOr<int64_t> GrantLease(absl::Duration ttl) = 0;
  // Renews the lease once; the TTL it has now. NOT_FOUND if it expired.
  virtual absl::StatusOr<absl::Duration> KeepAlive(int64_t lease) = 0;
  // Revokes the lease, deleting every key attached to it. NOT_FOUND if it
  // had expired.
  virtual absl::Status RevokeLease(int64_t lease) = 0;

  // Watches every key starting with `prefix` from `start_revision` (0: from
  // now). The stream opens lazily; errors come from Next.
  virtual std::unique_ptr<Watch> WatchPrefix(const std::string& prefix, int64_t start_revision) = 0;
};

// The first key after every key that starts with `prefix` (etcd's
// range_end for a prefix); "\0" for the empty prefix (every key).
std::string PrefixEnd(const std::string& prefix);

}  // namespace etcd
}  // namespace xenchan

#endif  // XENCHAN_SERVER_ETCD_CLIENT_H_
