// Request handling of xenchan-agent: hello, ping, facts, provision (see
// handler.h for the protocol; the provisioned record is provision_record.h).
#include "clients/agent/handler.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "clients/agent/provision_record.h"

namespace xenchan {
namespace agent {
namespace {

using json::Value;

constexpr char kCodePayload[] = "xenchan.dev/agent-error-code";
constexpr size_t kMaxSmallFile = 1 << 20;  // os-release, passwd

// An error with a protocol error code attached.
absl::Status Fail(absl::string_view code, absl::string_view message) {
  absl::Status s = absl::InvalidArgumentError(message);
  s.SetPayload(kCodePayload, absl::Cord(code));
  return s;
}

// The protocol code of an error: its attached code, or one derived from the
// status code (errors of TargetRoot).
std::string CodeOf(const absl::Status& s) {
  if (auto code = s.GetPayload(kCodePayload)) return std::string(*code);
  switch (s.code()) {
    case absl::StatusCode::kPermissionDenied:
      return kPathNotAllowed;
    case absl::StatusCode::kInvalidArgument:
      return kInvalidArgument;
    default:
      return kIoError;
  }
}

// Refuses members of `request` other than "op", "id" and `allowed`.
absl::Status CheckMembers(const Value& request, const std::set<absl::string_view>& allowed) {
  for (const auto& [key, value] : request.object()) {
    if (key == "op" || key == "id" || allowed.count(key) > 0) continue;
    return Fail(kInvalidRequest, absl::StrCat("unknown member \"", key, "\""));
  }
  return absl::OkStatus();
}

Value AgentIdentity(Value reply) {
  reply.Set("agent", Value::String(kAgentName));
  reply.Set("version", Value::String(kAgentVersion));
  return reply;
}

std::optional<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string out;
  char buf[4096];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    out.append(buf, static_cast<size_t>(in.gcount()));
    if (out.size() > kMaxSmallFile) return std::nullopt;
  }
  return out;
}

std::string JoinRoot(const std::string& root, absl::string_view path) {
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  if (r == "/") r.clear();
  return absl::StrCat(r, path);
}

// A file mode from a JSON integer (420) or octal string ("0644").
absl::StatusOr<mode_t> ParseMode(const Value& v) {
  int64_t mode = -1;
  if (v.is_number()) {
    if (!v.is_integer()) return Fail(kInvalidArgument, "mode must be an integer");
    mode = v.int_value();
  } else if (v.is_string()) {
    const std::string& s = v.string_value();
    if (s.empty() || s.size() > 4) return Fail(kInvalidArgument, "mode must be 1-4 octal digits");
    mode = 0;
    for (char c : s) {
      if (c < '0' || c > '7') return Fail(kInvalidArgument, "mode must be 1-4 octal digits");
      mode = mode * 8 + (c - '0');
    }
  } else {
    return Fail(kInvalidRequest, "mode must be a number or an octal string");
  }
  if (mode < 0 || mode > 0777) {
    return Fail(kInvalidArgument, "mode must be within 0..0777 (no setuid, setgid or sticky bits)");
  }
  return static_cast<mode_t>(mode);
}

struct PlannedFile {
  std::string path;  // canonical
  std::string content;
  mode_t mode;
};

struct Account {
  std::string home;
  FileOwner owner;
};

// Looks `user` up in <target>/etc/passwd.
absl::StatusOr<Account> LookUpUser(const TargetRoot& target, const std::string& user) {
  absl::StatusOr<std::string> passwd = target.ReadFile("/etc/passwd", kMaxSmallFile);
  if (passwd.ok()) {
    for (absl::string_view line : absl::StrSplit(*passwd, '\n')) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ':');
      if (f.size() < 7 || f[0] != user) continue;
      Account a;
      uint32_t uid, gid;
      if (!absl::SimpleAtoi(f[2], &uid) || !absl::SimpleAtoi(f[3], &gid) || f[5].empty()) {
        return Fail(kUserNotFound, absl::StrCat("malformed /etc/passwd entry for ", user));
      }
      a.owner = {uid, gid};
      a.home = std::string(f[5]);
      return a;
    }
  } else if (passwd.status().code() != absl::StatusCode::kNotFound) {
    return passwd.status();
  }
  if (user == "root") return Account{"/root", {0, 0}};
  return Fail(kUserNotFound, absl::StrCat("user ", user, " is not in the target's /etc/passwd"));
}

bool IsValidUserName(absl::string_view u) {
  if (u.empty() || u.size() > 32 || u[0] == '-') return false;
  for (char c : u) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string ErrorReply(absl::string_view code, absl::string_view message, const Value& id) {
  Value error = Value::MakeObject();
  error.Set("code", Value::String(std::string(code)));
  error.Set("message", Value::String(std::string(message)));
  Value reply = Value::MakeObject();
  reply.Set("ok", Value::Bool(false));
  reply.Set("error", std::move(error));
  if (!id.is_null()) reply.Set("id", id);
  return json::Serialize(reply);
}

std::map<std::string, std::string> ParseOsRelease(absl::string_view text) {
  std::map<std::string, std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos || eq == 0) continue;
    const std::string key(line.substr(0, eq));
    absl::string_view raw = line.substr(eq + 1);
    std::string value;
    if (!raw.empty() && (raw[0] == '"' || raw[0] == '\'')) {
      const char q = raw[0];
      bool closed = false;
      for (size_t i = 1; i < raw.size(); ++i) {
        if (q == '"' && raw[i] == '\\' && i + 1 < raw.size()) {
          value.push_back(raw[++i]);
        } else if (raw[i] == q) {
          closed = i + 1 == raw.size();
          break;
        } else {
          value.push_back(raw[i]);
        }
      }
      if (!closed) continue;
    } else {
      value = std::string(raw);
    }
    out[key] = value;
  }
  return out;
}

bool IsValidHostname(absl::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
  }
  return true;
}

absl::StatusOr<std::unique_ptr<Handler>> Handler::Create(Options options) {
  absl::StatusOr<std::unique_ptr<TargetRoot>> target = TargetRoot::Open(options.target_root);
  if (!target.ok()) return target.status();
  return std::unique_ptr<Handler>(new Handler(std::move(options), *std::move(target)));
}

std::string Handler::HandleLine(absl::string_view line) {
  absl::StatusOr<Value> request = json::Parse(line);
  if (!request.ok()) return ErrorReply(kParseError, request.status().message());
  if (!request->is_object()) return ErrorReply(kInvalidRequest, "a request must be a JSON object");
  const Value* id_member = request->Find("id");
  const Value id = id_member != nullptr ? *id_member : Value();
  const Value* op = request->Find("op");
  if (op == nullptr || !op->is_string()) {
    return ErrorReply(kInvalidRequest, "a request needs a string member \"op\"", id);
  }
  absl::StatusOr<Value> reply;
  const std::string& name = op->string_value();
  if (name == "hello") {
    reply = Hello(*request);
  } else if (name == "ping") {
    reply = Ping(*request);
  } else if (name == "facts") {
    reply = Facts(*request);
  } else if (name == "provision") {
    reply = Provision(*request);
  } else {
    return ErrorReply(kUnknownOp, absl::StrCat("unknown op \"", name, "\""), id);
  }
  if (!reply.ok()) return ErrorReply(CodeOf(reply.status()), reply.status().message(), id);
  if (!id.is_null()) reply->Set("id", id);
  return json::Serialize(*reply);
}

absl::StatusOr<Value> Handler::Hello(const Value& request) {
  if (absl::Status s = CheckMembers(request, {}); !s.ok()) return s;
  Value reply = Value::MakeObject();
  reply.Set("ok", Value::Bool(true));
  reply.Set("op", Value::String("hello"));
  reply = AgentIdentity(std::move(reply));
  reply.Set("protocol", Value::Int(kProtocolVersion));
  Value ops = Value::MakeArray();
  for (const char* o : {"hello", "ping", "facts", "provision"}) {
    ops.mutable_array().push_back(Value::String(o));
  }
  reply.Set("ops", std::move(ops));
  reply.Set("max_line_bytes", Value::Int(static_cast<int64_t>(options_.max_line_bytes)));
  return reply;
}

absl::StatusOr<Value> Handler::Ping(const Value& request) {
  if (absl::Status s = CheckMembers(request, {}); !s.ok()) return s;
  Value reply = Value::MakeObject();
  reply.Set("ok", Value::Bool(true));
  reply.Set("op", Value::String("pong"));
  return AgentIdentity(std::move(reply));
}

absl::StatusOr<Value> Handler::Facts(const Value& request) {
  if (absl::Status s = CheckMembers(request, {}); !s.ok()) return s;
  Value reply = Value::MakeObject();
  reply.Set("ok", Value::Bool(true));
  reply.Set("op", Value::String("facts"));
  struct utsname u;
  Value kernel;
  if (uname(&u) == 0) {
    reply.Set("hostname", Value::String(u.nodename));
    kernel = Value::MakeObject();
    kernel.Set("sysname", Value::String(u.sysname));
    kernel.Set("release", Value::String(u.release));
    kernel.Set("version", Value::String(u.version));
    kernel.Set("machine", Value::String(u.machine));
  } else {
    reply.Set("hostname", Value());
  }
  Value os;
  std::optional<std::string> text = ReadSmallFile(JoinRoot(options_.root, "/etc/os-release"));
  if (!text.has_value()) text = ReadSmallFile(JoinRoot(options_.root, "/usr/lib/os-release"));
  if (text.has_value()) {
    const std::map<std::string, std::string> fields = ParseOsRelease(*text);
    os = Value::MakeObject();
    for (const auto& [key, member] :
         std::vector<std::pair<std::string, std::string>>{{"ID", "id"},
                                                          {"NAME", "name"},
                                                          {"VERSION_ID", "version_id"},
                                                          {"PRETTY_NAME", "pretty_name"}}) {
      auto it = fields.find(key);
      os.Set(member, it == fields.end() ? Value() : Value::String(it->second));
    }
  }
  reply.Set("os", std::move(os));
  reply.Set("kernel", std::move(kernel));
  Value uptime;
  if (std::optional<std::string> up = ReadSmallFile("/proc/uptime")) {
    double seconds;
    std::vector<absl::string_view> parts = absl::StrSplit(*up, ' ');
    if (!parts.empty() && absl::SimpleAtod(parts[0], &seconds)) uptime = Value::Double(seconds);
  }
  reply.Set("uptime_seconds", std::move(uptime));
  std::optional<ProvisionRecord> record = ReadProvisionRecord(*target_);
  reply.Set("provisioned", record.has_value() ? RecordToJson(*record) : Value());
  return AgentIdentity(std::move(reply));
}

absl::StatusOr<Value> Handler::Provision(const Value& request) {
  if (absl::Status s =
          CheckMembers(request, {"hostname", "ssh_authorized_keys", "user", "files", "spec_id"});
      !s.ok()) {
    return s;
  }
  // Validate everything first: a bad request writes nothing.
  std::optional<std::string> spec_id;
  if (const Value* id = request.Find("spec_id")) {
    if (!id->is_string()) return Fail(kInvalidRequest, "spec_id must be a string");
    if (!IsValidSpecId(id->string_value())) {
      return Fail(kInvalidArgument, absl::StrCat("spec_id must be 1 to ", kMaxSpecIdBytes,
                                                 " bytes of printable ASCII without spaces"));
    }
    spec_id = id->string_value();
  }
  std::optional<std::string> hostname;
  if (const Value* h = request.Find("hostname")) {
    if (!h->is_string()) return Fail(kInvalidRequest, "hostname must be a string");
    if (!IsValidHostname(h->string_value())) {
      return Fail(kInvalidArgument,
                  absl::StrCat("hostname \"", h->string_value(), "\" is not an RFC 1123 name"));
    }
    hostname = h->string_value();
  }
  std::optional<std::string> keys;
  if (const Value* k = request.Find("ssh_authorized_keys")) {
    if (!k->is_array()) return Fail(kInvalidRequest, "ssh_authorized_keys must be a list");
    std::string text;
    for (const Value& key : k->array()) {
      if (!key.is_string()) return Fail(kInvalidRequest, "each SSH key must be a string");
      const absl::string_view s = absl::StripAsciiWhitespace(key.string_value());
      if (s.empty() || s.find_first_of(absl::string_view("\n\r\0", 3)) != absl::string_view::npos) {
        return Fail(kInvalidArgument, "an SSH key must be one non-empty line");
      }
      absl::StrAppend(&text, s, "\n");
    }
    keys = std::move(text);
  }
  std::string user = "root";
  if (const Value* u = request.Find("user")) {
    if (!u->is_string()) return Fail(kInvalidRequest, "user must be a string");
    if (!keys.has_value())
      return Fail(kInvalidRequest, "user is only used with ssh_authorized_keys");
    if (!IsValidUserName(u->string_value())) {
      return Fail(kInvalidArgument, absl::StrCat("invalid user name \"", u->string_value(), "\""));
    }
    user = u->string_value();
  }
  std::vector<PlannedFile> files;
  if (const Value* f = request.Find("files")) {
    if (!f->is_array()) return Fail(kInvalidRequest, "files must be a list");
    for (const Value& entry : f->array()) {
      if (!entry.is_object()) return Fail(kInvalidRequest, "each file must be an object");
      for (const auto& [key, value] : entry.object()) {
        if (key != "path" && key != "content" && key != "mode") {
          return Fail(kInvalidRequest, absl::StrCat("unknown file member \"", key, "\""));
        }
      }
      const Value* path = entry.Find("path");
      const Value* content = entry.Find("content");
      if (path == nullptr || !path->is_string()) {
        return Fail(kInvalidRequest, "each file needs a string path");
      }
      if (content == nullptr || !content->is_string()) {
        return Fail(kInvalidRequest, "each file needs a base64 string content");
      }
      absl::StatusOr<std::vector<std::string>> parts = TargetRoot::SplitPath(path->string_value());
      if (!parts.ok()) return parts.status();
      PlannedFile planned;
      planned.path = TargetRoot::Canonical(*parts);
      if (!absl::Base64Unescape(content->string_value(), &planned.content)) {
        return Fail(kInvalidArgument, absl::StrCat("content of ", planned.path, " is not base64"));
      }
      planned.mode = 0644;
      if (const Value* mode = entry.Find("mode")) {
        absl::StatusOr<mode_t> m = ParseMode(*mode);
        if (!m.ok()) return m.status();
        planned.mode = *m;
      }
      files.push_back(std::move(planned));
    }
  }
  std::optional<Account> account;
  if (keys.has_value()) {
    absl::StatusOr<Account> a = LookUpUser(*target_, user);
    if (!a.ok()) return a.status();
    absl::StatusOr<std::vector<std::string>> home = TargetRoot::SplitPath(a->home);
    if (!home.ok()) return home.status();
    account = *std::move(a);
  }

  // The record no longer holds once anything changes: remove it first, so
  // that an interrupted provision leaves no record rather than a stale one.
  if (absl::Status s = ClearProvisionRecord(*target_); !s.ok()) return s;
  Value written = Value::MakeArray();
  for (const PlannedFile& f : files) {
    if (absl::Status s = target_->WriteFile(f.path, f.content, f.mode); !s.ok()) return s;
    written.mutable_array().push_back(Value::String(f.path));
  }
  if (keys.has_value()) {
    const std::string ssh_dir = absl::StrCat(account->home, "/.ssh");
    if (absl::Status s = target_->EnsureDirectory(ssh_dir, 0700, account->owner); !s.ok()) {
      return s;
    }
    const std::string path = absl::StrCat(ssh_dir, "/authorized_keys");
    if (absl::Status s = target_->WriteFile(path, *keys, 0600, account->owner, 0700); !s.ok()) {
      return s;
    }
    written.mutable_array().push_back(
        Value::String(TargetRoot::Canonical(*TargetRoot::SplitPath(path))));
  }
  if (hostname.has_value()) {
    if (absl::Status s = target_->WriteFile("/etc/hostname", *hostname + "\n", 0644); !s.ok()) {
      return s;
    }
    written.mutable_array().push_back(Value::String("/etc/hostname"));
  }
  Value reply = Value::MakeObject();
  reply.Set("ok", Value::Bool(true));
  reply.Set("op", Value::String("provisioned"));
  reply.Set("written", std::move(written));
  if (spec_id.has_value()) {
    const ProvisionRecord record{*spec_id, FormatRecordTime(options_.now())};
    if (absl::Status s = WriteProvisionRecord(*target_, record); !s.ok()) return s;
    reply.Set("provisioned", RecordToJson(record));
  }
  return reply;
}

}  // namespace agent
}  // namespace xenchan
