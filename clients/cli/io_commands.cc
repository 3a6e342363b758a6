// xenchanctl's data commands: `read` (guest output to stdout), `write`
// (--data or stdin to the guest, with a progress line on a terminal) and
// `attach` (an interactive session in raw mode on a terminal, Ctrl-] quits;
// raw bytes both ways on pipes).
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "clients/cli/commands.h"
#include "clients/cli/terminal.h"
#include "clients/cli/usage.h"

namespace xenchan {
namespace cli {

using client::ChannelName;

int ReadCommand(const CommandContext& ctx) {
  const Args& args = ctx.args;
  const Output& out = ctx.out;
  if (args.positional.size() != 2) return out.Usage("read needs DOMAIN/CHANNEL");
  v1::ReadRequest req;
  req.set_channel(ChannelName(args.positional[1]));
  req.set_follow(args.Has("follow"));
  if (!ParseStart(args.Get("from"), req.mutable_start())) return out.Usage("bad --from");
  if (args.Has("max-bytes")) {
    uint64_t n;
    if (!absl::SimpleAtoi(args.Get("max-bytes"), &n)) return out.Usage("bad --max-bytes");
    req.set_max_bytes(n);
  }
  absl::Status s = ctx.client.Read(req, [&](const v1::ReadResponse& r) {
    if (out.json()) {
      out.PrintJson(r);
    } else if (r.has_data()) {
      fwrite(r.data().data().data(), 1, r.data().data().size(), stdout);
      std::fflush(stdout);
    } else if (r.has_gap()) {
      std::fprintf(stderr, "[gap: %llu bytes lost]\n",
                   static_cast<unsigned long long>(r.gap().length()));
    } else if (r.has_epoch_change()) {
      std::fprintf(stderr, "[epoch %llu%s]\n",
                   static_cast<unsigned long long>(r.epoch_change().epoch()),
                   Output::ReasonSuffix(r.epoch_change().reason()).c_str());
    }
    return true;
  });
  return s.ok() ? kOk : out.Fail(s);
}

int WriteCommand(const CommandContext& ctx) {
  const Args& args = ctx.args;
  const Output& out = ctx.out;
  if (args.positional.size() != 2) return out.Usage("write needs DOMAIN/CHANNEL");
  v1::WriteRequest first;
  first.set_channel(ChannelName(args.positional[1]));
  first.set_fail_fast(args.Has("fail-fast"));
  absl::StatusOr<v1::AckLevel> ack = ParseAckLevel(args.Get("ack", "accepted"));
  if (!ack.ok()) return out.Usage(std::string(ack.status().message()));
  first.set_ack_level(*ack);
  const bool from_stdin = !args.Has("data");
  if (!from_stdin) first.set_data(args.Get("data"));
  ProgressLine progress(isatty(STDERR_FILENO) && from_stdin);
  uint64_t sent = first.data().size();
  auto r = ctx.client.Write(
      first,
      [&](std::string* chunk) {
        if (!from_stdin) return false;
        chunk->resize(64 * 1024);
        const ssize_t n = ReadRetryingOnEintr(STDIN_FILENO, chunk->data(), chunk->size());
        if (n <= 0) return false;
        chunk->resize(static_cast<size_t>(n));
        sent += static_cast<uint64_t>(n);
        progress.Update(sent);
        return true;
      },
      ctx.timeout);
  progress.Finish(sent);
  if (!r.ok()) return out.Fail(r.status());
  if (out.json()) {
    out.PrintJson(*r);
  } else {
    std::fprintf(stderr, "accepted %llu, delivered %llu, consumed %llu bytes (epoch %llu)\n",
                 static_cast<unsigned long long>(r->progress().accepted_bytes()),
                 static_cast<unsigned long long>(r->progress().delivered_bytes()),
                 static_cast<unsigned long long>(r->progress().consumed_bytes()),
                 static_cast<unsigned long long>(r->progress().epoch()));
  }
  return kOk;
}

int AttachCommand(const CommandContext& ctx) {
  const Args& args = ctx.args;
  const Output& out = ctx.out;
  if (args.positional.size() != 2) return out.Usage("attach needs DOMAIN/CHANNEL");
  const bool observer = args.Has("observer");
  auto stream = ctx.client.Attach();
  v1::AttachRequest open;
  open.mutable_open()->set_channel(ChannelName(args.positional[1]));
  open.mutable_open()->set_role(observer ? v1::SESSION_ROLE_OBSERVER : v1::SESSION_ROLE_WRITER);
  open.mutable_open()->set_takeover(args.Has("takeover"));
  if (!ParseStart(args.Get("from"), open.mutable_open()->mutable_start())) {
    return out.Usage("bad --from");
  }
  stream->Send(open);
  const bool tty = isatty(STDIN_FILENO);
  RawTerminal raw;
  if (tty && !out.json()) {
    raw.Enter(STDIN_FILENO);
    std::fprintf(stderr, "[attached to %s; Ctrl-] quits]\r\n", args.positional[1].c_str());
  }
  std::atomic<bool> done{false};
  std::thread reader([&] {
    v1::AttachResponse m;
    while (stream->Receive(&m)) {
      if (out.json()) {
        out.PrintJson(m);
      } else if (m.has_data()) {
        fwrite(m.data().data().data(), 1, m.data().data().size(), stdout);
        std::fflush(stdout);
      } else if (m.has_gap() && tty) {
        std::fprintf(stderr, "\r\n[gap: %llu bytes lost]\r\n",
                     static_cast<unsigned long long>(m.gap().length()));
      } else if (m.has_epoch_change() && tty) {
        std::fprintf(stderr, "\r\n[guest reconnected: epoch %llu%s]\r\n",
                     static_cast<unsigned long long>(m.epoch_change().epoch()),
                     Output::ReasonSuffix(m.epoch_change().reason()).c_str());
      } else if (m.has_write_rejection()) {
        std::fprintf(stderr, "\r\n[write rejected: %s]\r\n", m.write_rejection().message().c_str());
      } else if (m.has_lease_lost()) {
        std::fprintf(stderr, "\r\n[write lease taken over by %s]\r\n",
                     m.lease_lost().new_holder().session_id().c_str());
      }
    }
    done = true;
  });
  uint64_t seq = 0;
  bool quit = false;
  while (!done && !quit) {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    const int r = poll(&p, 1, 200);
    if (r <= 0) continue;
    char buf[4096];
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF on a pipe: half-close below
    std::string data(buf, static_cast<size_t>(n));
    if (tty && CutAtQuitKey(&data)) quit = true;
    if (!observer && !data.empty()) {
      v1::AttachRequest w;
      w.mutable_write()->set_sequence_id(++seq);
      w.mutable_write()->set_data(data);
      if (!stream->Send(w)) break;
    }
  }
  if (quit) {
    stream->Cancel();
  } else {
    stream->HalfClose();
  }
  reader.join();
  raw.Restore();
  absl::Status s = stream->Finish();
  if (quit && s.code() == absl::StatusCode::kCancelled) return kOk;
  return s.ok() ? kOk : out.Fail(s);
}

}  // namespace cli
}  // namespace xenchan
