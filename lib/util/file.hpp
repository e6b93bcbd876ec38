// Durable, all-or-nothing file writes (temp + write + fsync + rename), shared
// by every place that stores a file: upload chunks, mail, keys, the port file.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace lucid::detail {

// Creates `path` (O_EXCL: fails with EEXIST if it exists; `mode` before the
// umask), writes all of `data` (short writes and EINTR are retried),
// fdatasyncs and closes it. On failure nothing is left at `path`; returns
// false with errno set by the call that failed. Thread-safe.
bool write_new_file_synced(const std::string& path, std::string_view data, mode_t mode = 0600);

// What write_file_atomically does with a temporary file a crash left behind.
enum class StaleTemp {
  refuse,   // fail with EEXIST (for names no one else writes: unique ones)
  replace,  // remove it first (for a fixed name only this process writes)
};

// Writes `data` to `path` so that readers see the old file or the whole new
// one, never a part: write_new_file_synced to `path + ".tmp"`, then rename
// over `path`. On failure the temporary file is removed and `path` is
// untouched; returns false with errno set. The rename is durable only once
// the directory is synced (fsync_dir). Thread-safe for distinct paths.
bool write_file_atomically(const std::string& path, std::string_view data, StaleTemp stale = StaleTemp::refuse,
                           mode_t mode = 0600);

// fsyncs directory `dir`, making the creations and renames in it durable.
// false with errno set on failure.
bool fsync_dir(const std::string& dir);

}  // namespace lucid::detail
