// Service file uploads (README "WebSocket": FILE_UPLOAD_START/CHUNK/END):
// a file sent in base64 chunks over a connection is written to
// <data_dir>/uploads/.partial/<random> and, when complete, renamed to
// <data_dir>/uploads/<service_id>/<file_name> (atomically: readers see the
// old file or the whole new one). Internal: the server's /api/ws hub parses
// and encodes the messages and decides who may upload; this is the rest.
//
// Quotas: each user has at most max_uploads_per_user uploads open across all
// its connections and at most max_upload_bytes_per_user bytes declared by
// them together (reserved at start, released when the upload completes, fails
// or its connection goes); each connection at most max_uploads_per_client.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "util/json_object.hpp"

namespace lucid {
class Workflows;
}

namespace lucid::detail {

struct UploadLimits {
  std::string data_dir;                                        // files go under <data_dir>/uploads/
  std::int64_t max_upload_bytes = 64 * 1024 * 1024;            // one file
  std::int64_t max_chunk_bytes = 1024 * 1024;                  // one decoded chunk
  int max_uploads_per_client = 4;                              // concurrent, one UploadSet
  int max_uploads_per_user = 4;                                // concurrent, all of a user's sets
  std::int64_t max_upload_bytes_per_user = 256 * 1024 * 1024;  // declared sizes of a user's open uploads
};

// A completed upload (FILE_UPLOAD_COMPLETE's payload).
struct StoredUpload {
  std::string session_id;
  std::int64_t service_id = 0;
  std::string file_name;
  std::int64_t file_size = 0;
  std::string path;  // relative to data_dir: "uploads/<service_id>/<file_name>"
};

// The limits and the per-user quota shared by every connection's UploadSet.
// Thread-safe.
class Uploads {
 public:
  // `workflows` (which knows the services) must outlive this.
  Uploads(Workflows& workflows, UploadLimits limits);
  const UploadLimits& limits() const { return limits_; }
  Workflows& workflows() { return workflows_; }

  // Reserves one upload of `bytes` for `user` under the per-user quota.
  // Errors: resource_exhausted when the user has max_uploads_per_user
  // uploads open or the reservation would pass max_upload_bytes_per_user.
  void reserve(const std::string& user, std::int64_t bytes);
  // Gives back a reservation of reserve(). Never throws.
  void release(const std::string& user, std::int64_t bytes) noexcept;

 private:
  Workflows& workflows_;
  const UploadLimits limits_;
  struct UserUploads {
    int count = 0;
    std::int64_t bytes = 0;
  };
  std::mutex mu_;
  std::unordered_map<std::string, UserUploads> users_;  // users with an open upload only
};

// One connection's open uploads, by the client's session_id. Each method
// takes the message's payload object and reads its fields itself (in the
// order the errors have always been reported). Errors: Error(invalid_argument,
// message, field) for a bad field, not_found for an unknown service or
// session_id, resource_exhausted for a quota, internal for I/O failures; an
// error leaves the upload open (the caller drops it: drop()).
// Not thread-safe: one connection uses it from one thread (its strand).
class UploadSet {
 public:
  explicit UploadSet(std::shared_ptr<Uploads> uploads);
  // Open uploads are dropped (their partial files removed, quota given back).
  ~UploadSet();
  UploadSet(const UploadSet&) = delete;
  UploadSet& operator=(const UploadSet&) = delete;

  // FILE_UPLOAD_START {session_id, service_id, file_name, file_size,
  // chunk_size? (default 262144)} for `owner` (the quota's user). Returns the
  // session_id of the new upload.
  std::string start(const std::string& owner, const JsonObject& payload);
  // How far an upload is (after a chunk).
  struct Progress {
    std::string session_id;
    std::int64_t chunks_received = 0;
    std::int64_t bytes_received = 0;
    std::int64_t file_size = 0;
  };
  // FILE_UPLOAD_CHUNK {session_id, chunk_index (0, 1, ... in order), data
  // (standard base64 of at most chunk_size bytes)}: appends the bytes.
  // Returns the upload's progress.
  Progress chunk(const JsonObject& payload);
  // FILE_UPLOAD_END {session_id}: all file_size bytes arrived; the file is
  // synced and moved into place; the upload is closed.
  StoredUpload end(const JsonObject& payload);
  // Drops the upload `session_id` if open (after a failed message).
  void drop(const std::string& session_id) noexcept;

 private:
  struct Upload;
  Upload& upload_of(const JsonObject& payload, std::string& session_id);
  std::shared_ptr<Uploads> uploads_;
  std::map<std::string, std::unique_ptr<Upload>> open_;
};

}  // namespace lucid::detail
