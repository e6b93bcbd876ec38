#include "workflows/uploads.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>

#include "lucidnode/error.hpp"
#include "lucidnode/workflows.hpp"
#include "util/base64.hpp"
#include "util/encoding.hpp"

namespace lucid::detail {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void bad(const char* field, const std::string& msg) { throw Error(Errc::invalid_argument, msg, field); }

// A plain file name: no directory part, no leading dot, a safe alphabet.
bool plain_file_name(std::string_view n) {
  if (n.empty() || n.size() > 128 || n.front() == '.') return false;
  return std::all_of(n.begin(), n.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == '-';
  });
}

}  // namespace

struct UploadSet::Upload {
  // The per-user quota reservation, given back when the upload goes (even
  // after the server's hub, holding the Uploads, went).
  std::weak_ptr<Uploads> uploads;
  std::string owner;
  std::int64_t reserved = -1;  // -1: nothing reserved
  std::int64_t service_id = 0;
  std::string file_name;
  std::int64_t size = 0;
  std::int64_t chunk_size = 0;
  std::int64_t received = 0;
  std::int64_t next_chunk = 0;
  fs::path tmp;
  int fd = -1;
  ~Upload() {
    if (reserved >= 0)
      if (auto u = uploads.lock()) u->release(owner, reserved);
    if (fd >= 0) ::close(fd);
    if (!tmp.empty()) {
      std::error_code ec;
      fs::remove(tmp, ec);
    }
  }
};

Uploads::Uploads(Workflows& workflows, UploadLimits limits) : workflows_(workflows), limits_(std::move(limits)) {}

void Uploads::reserve(const std::string& user, std::int64_t bytes) {
  std::lock_guard lock(mu_);
  auto& u = users_[user];
  if (u.count >= limits_.max_uploads_per_user || bytes > limits_.max_upload_bytes_per_user - u.bytes) {
    const bool too_many = u.count >= limits_.max_uploads_per_user;
    if (u.count == 0) users_.erase(user);
    throw Error(Errc::resource_exhausted,
                too_many ? "Upload quota: at most " + std::to_string(limits_.max_uploads_per_user) + " uploads open per user"
                         : "Upload quota: at most " + std::to_string(limits_.max_upload_bytes_per_user) +
                               " bytes in open uploads per user");
  }
  ++u.count;
  u.bytes += bytes;
}

void Uploads::release(const std::string& user, std::int64_t bytes) noexcept {
  std::lock_guard lock(mu_);
  auto it = users_.find(user);
  if (it == users_.end()) return;
  it->second.bytes -= bytes;
  if (--it->second.count <= 0) users_.erase(it);
}

// Out of line, like the destructor: Upload is complete only here.
UploadSet::UploadSet(std::shared_ptr<Uploads> uploads) : uploads_(std::move(uploads)) {}
UploadSet::~UploadSet() = default;

std::string UploadSet::start(const std::string& owner, const JsonObject& p) {
  const auto& o = uploads_->limits();
  auto sid = p.required_string("session_id", 64);
  if (sid.empty()) bad("session_id", "session_id must not be empty");
  if (open_.count(sid)) bad("session_id", "an upload with this session_id is in progress");
  if (static_cast<int>(open_.size()) >= o.max_uploads_per_client) bad("session_id", "too many concurrent uploads");
  auto u = std::make_unique<Upload>();
  u->service_id = p.required_int("service_id");
  if (u->service_id < 1) bad("service_id", "service_id must be a positive integer");
  uploads_->workflows().get_service(u->service_id);  // not_found when absent
  u->file_name = p.required_string("file_name", 128);
  if (!plain_file_name(u->file_name)) bad("file_name", "file_name must be a plain file name ([A-Za-z0-9._-], no leading dot)");
  u->size = p.required_int("file_size");
  if (u->size < 0 || u->size > o.max_upload_bytes)
    bad("file_size", "file_size must be 0.." + std::to_string(o.max_upload_bytes));
  u->chunk_size = p.optional_int("chunk_size").value_or(262144);
  if (u->chunk_size < 1 || u->chunk_size > o.max_chunk_bytes)
    bad("chunk_size", "chunk_size must be 1.." + std::to_string(o.max_chunk_bytes));
  u->owner = owner;
  uploads_->reserve(u->owner, u->size);  // last check: nothing below refuses but I/O
  u->uploads = uploads_;
  u->reserved = u->size;
  const fs::path dir = fs::path(o.data_dir) / "uploads" / ".partial";
  std::error_code ec;
  fs::create_directories(dir, ec);
  u->tmp = dir / to_hex(random_bytes(16));
  u->fd = ::open(u->tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (u->fd < 0) {
    u->tmp.clear();
    throw Error(Errc::internal, "Cannot create the upload file");
  }
  open_[sid] = std::move(u);
  return sid;
}

UploadSet::Upload& UploadSet::upload_of(const JsonObject& p, std::string& sid) {
  sid = p.required_string("session_id", 64);
  auto it = open_.find(sid);
  if (it == open_.end()) throw Error(Errc::not_found, "No upload with this session_id");
  return *it->second;
}

UploadSet::Progress UploadSet::chunk(const JsonObject& p) {
  std::string sid;
  Upload& u = upload_of(p, sid);
  const auto index = p.required_int("chunk_index");
  if (index != u.next_chunk) bad("chunk_index", "expected chunk_index " + std::to_string(u.next_chunk));
  const auto b64 = p.required_string("data", static_cast<std::size_t>(u.chunk_size / 3 * 4 + 8));
  std::string data;
  if (!base64_decode_strict(b64, data)) bad("data", "data must be standard base64");
  if (static_cast<std::int64_t>(data.size()) > u.chunk_size) bad("data", "chunk larger than chunk_size");
  if (u.received + static_cast<std::int64_t>(data.size()) > u.size) bad("data", "more data than file_size");
  std::size_t off = 0;
  while (off < data.size()) {
    auto n = ::write(u.fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(Errc::internal, "Writing the upload failed");
    off += static_cast<std::size_t>(n);
  }
  u.received += static_cast<std::int64_t>(data.size());
  ++u.next_chunk;
  return Progress{sid, u.next_chunk, u.received, u.size};
}

StoredUpload UploadSet::end(const JsonObject& p) {
  std::string sid;
  Upload& u = upload_of(p, sid);
  if (u.received != u.size)
    bad("file_size", "received " + std::to_string(u.received) + " of " + std::to_string(u.size) + " bytes");
  if (::fsync(u.fd) != 0) throw Error(Errc::internal, "Writing the upload failed");
  ::close(u.fd);
  u.fd = -1;
  const fs::path dir = fs::path(uploads_->limits().data_dir) / "uploads" / std::to_string(u.service_id);
  std::error_code ec;
  fs::create_directories(dir, ec);
  fs::rename(u.tmp, dir / u.file_name, ec);  // atomic: readers see the old file or the whole new one
  if (ec) throw Error(Errc::internal, "Storing the upload failed");
  u.tmp.clear();
  StoredUpload out{sid, u.service_id, u.file_name, u.size,
                   "uploads/" + std::to_string(u.service_id) + "/" + u.file_name};
  open_.erase(sid);
  return out;
}

void UploadSet::drop(const std::string& session_id) noexcept { open_.erase(session_id); }

}  // namespace lucid::detail
