// See client.h. The Client over etcd's generated gRPC stubs; the Watch in
// watch.cc.
#include "server/etcd/client.h"

#include <atomic>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "server/etcd/client_internal.h"

namespace xenchan {
namespace etcd {
namespace {

namespace pb = etcdserverpb;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void ToKeyValue(const mvccpb::KeyValue& in, KeyValue* out) {
  out->key = in.key();
  out->value = in.value();
  out->create_revision = in.create_revision();
  out->mod_revision = in.mod_revision();
  out->version = in.version();
  out->lease = in.lease();
}

std::vector<KeyValue> ToKeyValues(const pb::RangeResponse& r) {
  std::vector<KeyValue> out(r.kvs_size());
  for (int i = 0; i < r.kvs_size(); ++i) ToKeyValue(r.kvs(i), &out[i]);
  return out;
}

void ToRequestOp(const Op& op, pb::RequestOp* out) {
  switch (op.kind) {
    case Op::Kind::kPut: {
      pb::PutRequest* put = out->mutable_request_put();
      put->set_key(op.key);
      put->set_value(op.value);
      put->set_lease(op.lease);
      break;
    }
    case Op::Kind::kDelete: {
      pb::DeleteRangeRequest* del = out->mutable_request_delete_range();
      del->set_key(op.key);
      if (op.prefix) del->set_range_end(PrefixEnd(op.key));
      break;
    }
    case Op::Kind::kGet: {
      pb::RangeRequest* get = out->mutable_request_range();
      get->set_key(op.key);
      if (op.prefix) get->set_range_end(PrefixEnd(op.key));
      break;
    }
  }
}

void ToCompare(const Compare& c, pb::Compare* out) {
  out->set_key(c.key);
  switch (c.result) {
    case Compare::Result::kEqual:
      out->set_result(pb::Compare::EQUAL);
      break;
    case Compare::Result::kNotEqual:
      out->set_result(pb::Compare::NOT_EQUAL);
      break;
    case Compare::Result::kGreater:
      out->set_result(pb::Compare::GREATER);
      break;
    case Compare::Result::kLess:
      out->set_result(pb::Compare::LESS);
      break;
  }
  switch (c.target) {
    case Compare::Target::kVersion:
      out->set_target(pb::Compare::VERSION);
      out->set_version(c.number);
      break;
    case Compare::Target::kCreateRevision:
      out->set_target(pb::Compare::CREATE);
      out->set_create_revision(c.number);
      break;
    case Compare::Target::kModRevision:
      out->set_target(pb::Compare::MOD);
      out->set_mod_revision(c.number);
      break;
    case Compare::Target::kValue:
      out->set_target(pb::Compare::VALUE);
      out->set_value(c.value);
      break;
  }
}

class GrpcClient : public Client {
 public:
  GrpcClient(std::vector<std::shared_ptr<grpc::Channel>> channels, absl::Duration rpc_timeout)
      : rpc_timeout_(rpc_timeout) {
    for (auto& ch : channels) {
      members_.push_back(Member{pb::KV::NewStub(ch), pb::Lease::NewStub(ch), ch});
    }
  }

  absl::StatusOr<std::optional<KeyValue>> Get(const std::string& key) override {
    pb::RangeRequest req;
    req.set_key(key);
    pb::RangeResponse resp;
    absl::Status s =
        Call([&](Member& m, grpc::ClientContext* ctx) { return m.kv->Range(ctx, req, &resp); });
    if (!s.ok()) return s;
    if (resp.kvs_size() == 0) return std::optional<KeyValue>();
    KeyValue kv;
    ToKeyValue(resp.kvs(0), &kv);
    return std::optional<KeyValue>(std::move(kv));
  }

  absl::StatusOr<Range> GetPrefix(const std::string& prefix, int64_t limit) override {
    pb::RangeRequest req;
    req.set_key(prefix);
    req.set_range_end(PrefixEnd(prefix));
    req.set_limit(limit);
    pb::RangeResponse resp;
    absl::Status s =
        Call([&](Member& m, grpc::ClientContext* ctx) { return m.kv->Range(ctx, req, &resp); });
    if (!s.ok()) return s;
    Range out;
    out.kvs = ToKeyValues(resp);
    out.revision = resp.header().revision();
    out.more = resp.more();
    return out;
  }

  absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value,
                              int64_t lease) override {
    pb::PutRequest req;
    req.set_key(key);
    req.set_value(value);
    req.set_lease(lease);
    pb::PutResponse resp;
    absl::Status s =
        Call([&](Member& m, grpc::ClientContext* ctx) { return m.kv->Put(ctx, req, &resp); });
    if (!s.ok()) return s;
    return resp.header().revision();
  }

  absl::StatusOr<int64_t> Delete(const std::string& key, bool prefix) override {
    pb::DeleteRangeRequest req;
    req.set_key(key);
    if (prefix) req.set_range_end(PrefixEnd(key));
    pb::DeleteRangeResponse resp;
    absl::Status s = Call(
        [&](Member& m, grpc::ClientContext* ctx) { return m.kv->DeleteRange(ctx, req, &resp); });
    if (!s.ok()) return s;
    return resp.deleted();
  }

  absl::StatusOr<TxnResult> Txn(const std::vector<Compare>& compares,
                                const std::vector<Op>& success,
                                const std::vector<Op>& failure) override {
    pb::TxnRequest req;
    for (const Compare& c : compares) ToCompare(c, req.add_compare());
    for (const Op& op : success) ToRequestOp(op, req.add_success());
    for (const Op& op : failure) ToRequestOp(op, req.add_failure());
    pb::TxnResponse resp;
    absl::Status s =
        Call([&](Member& m, grpc::ClientContext* ctx) { return m.kv->Txn(ctx, req, &resp); });
    if (!s.ok()) return s;
    TxnResult out;
    out.succeeded = resp.succeeded();
    out.revision = resp.header().revision();
    for (const pb::ResponseOp& r : resp.responses()) {
      if (r.has_response_range()) out.gets.push_back(ToKeyValues(r.response_range()));
    }
    return out;
  }

  absl::StatusOr<int64_t> GrantLease(absl::Duration ttl) override {
    pb::LeaseGrantRequest req;
    req.set_ttl(std::max<int64_t>(1, absl::ToInt64Seconds(ttl)));
    pb::LeaseGrantResponse resp;
    absl::Status s = Call(
        [&](Member& m, grpc::ClientContext* ctx) { return m.lease->LeaseGrant(ctx, req, &resp); });
    if (!s.ok()) return s;
    if (!resp.error().empty()) return absl::InternalError(resp.error());
    return resp.id();
  }

  absl::StatusOr<absl::Duration> KeepAlive(int64_t lease) override {
    pb::LeaseKeepAliveResponse resp;
    absl::Status s = Call([&](Member& m, grpc::ClientContext* ctx) {
      auto stream = m.lease->LeaseKeepAlive(ctx);
      pb::LeaseKeepAliveRequest req;
      req.set_id(lease);
      if (!stream->Write(req) || !stream->Read(&resp)) {
        ctx->TryCancel();
        grpc::Status st = stream->Finish();
        return st.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "keep-alive stream ended")
                       : st;
      }
      stream->WritesDone();
      ctx->TryCancel();  // one renewal is all we wanted
      (void)stream->Finish();
      return grpc::Status::OK;
    });
    if (!s.ok()) return s;
    if (resp.ttl() <= 0) return absl::NotFoundError(absl::StrCat("lease ", lease, " expired"));
    return absl::Seconds(resp.ttl());
  }

  absl::Status RevokeLease(int64_t lease) override {
    pb::LeaseRevokeRequest req;
    req.set_id(lease);
    pb::LeaseRevokeResponse resp;
    return Call(
        [&](Member& m, grpc::ClientContext* ctx) { return m.lease->LeaseRevoke(ctx, req, &resp); });
  }

  std::unique_ptr<Watch> WatchPrefix(const std::string& prefix, int64_t start_revision) override {
    const size_t index = current_.load() % members_.size();
    // A stream that breaks moves the next call (and watch) to another member.
    auto on_unavailable = [this, index] {
      size_t expected = index;
      current_.compare_exchange_strong(expected, (index + 1) % members_.size());
    };
    return internal::NewGrpcWatch(members_[index].channel, prefix, start_revision,
                                  std::move(on_unavailable));
  }

 private:
  struct Member {
    std::unique_ptr<pb::KV::Stub> kv;
    std::unique_ptr<pb::Lease::Stub> lease;
    std::shared_ptr<grpc::Channel> channel;
  };

  // Runs `rpc` on the current member and, while the answer is UNAVAILABLE,
  // once on each of the others; the member that answered becomes current.
  template <typename Rpc>
  absl::Status Call(Rpc rpc) {
    const size_t start = current_.load();
    grpc::Status last;
    for (size_t i = 0; i < members_.size(); ++i) {
      const size_t index = (start + i) % members_.size();
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(rpc_timeout_));
      last = rpc(members_[index], &ctx);
      if (last.error_code() != grpc::StatusCode::UNAVAILABLE) {
        current_.store(index);
        break;
      }
    }
    return internal::FromGrpc(last);
  }

  const absl::Duration rpc_timeout_;
  std::vector<Member> members_;
  std::atomic<size_t> current_{0};
};

}  // namespace

Compare Compare::Missing(std::string key) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kVersion;
  c.result = Result::kEqual;
  c.number = 0;
  return c;
}

Compare Compare::ModRevisionIs(std::string key, int64_t mod_revision) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kModRevision;
  c.result = Result::kEqual;
  c.number = mod_revision;
  return c;
}

Op Op::Put(std::string key, std::string value, int64_t lease) {
  Op op;
  op.kind = Kind::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}

Op Op::Delete(std::string key, bool prefix) {
  Op op;
  op.kind = Kind::kDelete;
  op.key = std::move(key);
  op.prefix = prefix;
  return op;
}

Op Op::Get(std::string key, bool prefix) {
  Op op;
  op.kind = Kind::kGet;
  op.key = std::move(key);
  op.prefix = prefix;
  return op;
}

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(const ClientOptions& options) {
  if (options.endpoints.empty()) return absl::InvalidArgumentError("no etcd endpoints");
  std::shared_ptr<grpc::ChannelCredentials> tls;
  if (!options.ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    auto ca = ReadFile(options.ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    if (!options.cert_file.empty() || !options.key_file.empty()) {
      auto cert = ReadFile(options.cert_file);
      if (!cert.ok()) return cert.status();
      auto key = ReadFile(options.key_file);
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    tls = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_response_bytes);
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (const std::string& endpoint : options.endpoints) {
    auto parsed = internal::ParseEndpoint(endpoint);
    if (!parsed.ok()) return parsed.status();
    if (parsed->tls && tls == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("etcd endpoint ", endpoint, " is https but no CA file was given"));
    }
    channels.push_back(grpc::CreateCustomChannel(
        parsed->target, parsed->tls ? tls : grpc::InsecureChannelCredentials(), args));
  }
  return std::unique_ptr<Client>(new GrpcClient(std::move(channels), options.rpc_timeout));
}

}  // namespace etcd
}  // namespace xenchan
