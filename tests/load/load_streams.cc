// See load_streams.h.
#include "tests/load/load_streams.h"

#include <string.h>

#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clients/lib/client.h"

namespace xenchan {
namespace load {
namespace {

using client::FromGrpc;

std::string EchoPayload(size_t n, uint64_t seq) {
  std::string s = absl::StrFormat("%016x", seq);
  s.resize(n, static_cast<char>('a' + seq % 26));
  return s.substr(0, n);
}

using AttachStream = grpc::ClientReaderWriter<v1::AttachRequest, v1::AttachResponse>;

// Opens an Attach writer session on `channel` (`level`: its ack level;
// UNSPECIFIED: none asked for); true if it opened (the reply in `m`).
bool OpenWriter(AttachStream& stream, const std::string& channel, v1::AckLevel level,
                v1::AttachResponse* m) {
  v1::AttachRequest open;
  open.mutable_open()->set_channel(channel);
  open.mutable_open()->set_role(v1::SESSION_ROLE_WRITER);
  if (level != v1::ACK_LEVEL_UNSPECIFIED) open.mutable_open()->set_ack_level(level);
  return stream.Write(open) && stream.Read(m) && m->has_opened();
}

// Half-closes a writer stream, drains what is left and counts its final
// status.
void CloseWriter(AttachStream& stream, v1::AttachResponse* m, Figures* fig) {
  stream.WritesDone();
  while (stream.Read(m)) {
  }
  fig->Finished(FromGrpc(stream.Finish()));
}

}  // namespace

void RunEcho(StreamSpec spec, size_t payload, const std::atomic<bool>& stop, absl::Time deadline,
             Figures* fig) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(deadline));
  auto stream = spec.stub->Attach(&ctx);
  v1::AttachResponse m;
  bool ok = OpenWriter(*stream, spec.channel, v1::ACK_LEVEL_UNSPECIFIED, &m);
  std::vector<double> us;
  int64_t msgs = 0;
  v1::AttachRequest w;
  for (uint64_t seq = 1; ok && !stop.load(std::memory_order_relaxed); ++seq) {
    const std::string data = EchoPayload(payload, seq);
    w.mutable_write()->set_sequence_id(seq);
    w.mutable_write()->set_data(data);
    const uint64_t t0 = spec.pacer.has_value() ? spec.pacer->Wait(stop) : MonoNs();
    if (stop.load(std::memory_order_relaxed)) break;
    if (!stream->Write(w)) break;
    std::string got;
    while (got.size() < data.size()) {
      if (!stream->Read(&m)) {
        ok = false;
        break;
      }
      if (m.has_data()) got += m.data().data();
      if (m.has_write_rejection())
        fig->Error(
            absl::StrCat("WRITE_REJECTED/", v1::ErrorReason_Name(m.write_rejection().reason())));
      if (m.has_gap()) fig->Error("GAP");
      if (m.has_epoch_change()) fig->Error("EPOCH_CHANGE");
    }
    if (!ok) break;
    us.push_back((MonoNs() - t0) / 1e3);
    ++msgs;
    if (got != data) {
      fig->Error("MISMATCH");
      break;
    }
  }
  CloseWriter(*stream, &m, fig);
  fig->Merge(Kind::kEcho, std::move(us), msgs, msgs * static_cast<int64_t>(payload));
}

void RunWrite(StreamSpec spec, size_t payload, size_t window, const std::atomic<bool>& stop,
              absl::Time deadline, Figures* fig) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(deadline));
  auto stream = spec.stub->Attach(&ctx);
  v1::AttachResponse m;
  bool ok = OpenWriter(*stream, spec.channel, v1::ACK_LEVEL_CONSUMED, &m);
  std::vector<double> us;
  int64_t msgs = 0;
  std::deque<std::pair<uint64_t, uint64_t>> outstanding;  // (seq, sent at)
  v1::AttachRequest w;
  w.mutable_write()->set_data(std::string(payload, 'w'));
  uint64_t seq = 0;
  while (ok) {
    while (!stop.load(std::memory_order_relaxed) && outstanding.size() < window) {
      const uint64_t due = spec.pacer.has_value() ? spec.pacer->Wait(stop) : MonoNs();
      if (stop.load(std::memory_order_relaxed)) break;
      w.mutable_write()->set_sequence_id(++seq);
      outstanding.emplace_back(seq, due);
      if (!stream->Write(w)) {
        ok = false;
        break;
      }
    }
    if (!ok || outstanding.empty()) break;
    if (!stream->Read(&m)) break;
    if (m.has_write_ack() && m.write_ack().level() == v1::ACK_LEVEL_CONSUMED) {
      const uint64_t now = MonoNs();
      while (!outstanding.empty() && outstanding.front().first <= m.write_ack().sequence_id()) {
        us.push_back((now - outstanding.front().second) / 1e3);
        ++msgs;
        outstanding.pop_front();
      }
    }
    if (m.has_write_rejection()) {
      const auto& r = m.write_rejection();
      int64_t n = 0;
      while (!outstanding.empty() && outstanding.front().first <= r.last_sequence_id()) {
        outstanding.pop_front();
        ++n;
      }
      fig->Error(absl::StrCat("WRITE_REJECTED/", v1::ErrorReason_Name(r.reason())), n);
    }
  }
  CloseWriter(*stream, &m, fig);
  fig->Merge(Kind::kWrite, std::move(us), msgs, msgs * static_cast<int64_t>(payload));
}

// Reads source records; cancelled from outside through `ctx`.
void RunRead(const StreamSpec& spec, size_t payload, grpc::ClientContext* ctx, Figures* fig) {
  v1::ReadRequest req;
  req.set_channel(spec.channel);
  req.set_follow(true);
  req.mutable_start()->set_anchor(v1::START_ANCHOR_NEXT);
  auto stream = spec.stub->Read(ctx, req);
  v1::ReadResponse m;
  std::vector<double> us;
  int64_t msgs = 0;
  std::string buf;
  bool aligned = false;
  uint64_t next_offset = 0;
  bool have_seq = false;
  uint64_t last_seq = 0;
  while (stream->Read(&m)) {
    if (m.has_gap()) {
      fig->Error("GAP");
      aligned = false;
      have_seq = false;
      continue;
    }
    if (m.has_epoch_change()) {
      fig->Error("EPOCH_CHANGE");
      aligned = false;
      have_seq = false;
      continue;
    }
    if (!m.has_data()) continue;
    const std::string& d = m.data().data();
    size_t from = 0;
    if (!aligned || m.data().offset() != next_offset) {
      buf.clear();
      from = (payload - m.data().offset() % payload) % payload;
      aligned = true;
    }
    next_offset = m.data().offset() + d.size();
    if (from < d.size()) buf.append(d, from, std::string::npos);
    const uint64_t now = MonoNs();
    size_t pos = 0;
    for (; pos + payload <= buf.size(); pos += payload) {
      uint64_t seq, ts;
      memcpy(&seq, buf.data() + pos, 8);
      memcpy(&ts, buf.data() + pos + 8, 8);
      if (have_seq && seq != last_seq + 1) fig->Error("MISMATCH");
      have_seq = true;
      last_seq = seq;
      us.push_back(now > ts ? (now - ts) / 1e3 : 0);
      ++msgs;
    }
    buf.erase(0, pos);
  }
  fig->Finished(FromGrpc(stream->Finish()), absl::StatusCode::kCancelled);
  fig->Merge(Kind::kRead, std::move(us), msgs, msgs * static_cast<int64_t>(payload));
}

}  // namespace load
}  // namespace xenchan
