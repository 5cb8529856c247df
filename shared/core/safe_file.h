// Crash-safe file helpers: every write that must survive a crash goes through these.
#pragma once

#include <string>

namespace ldm {

// Reads a whole file; throws Error naming the path.
std::string read_file(const std::string& path);

// Writes `data` to `path` atomically: write "<path>.tmp", fsync, rename, fsync the directory.
// A full disk or any I/O error throws Error naming the path and leaves the old file intact.
void write_file_atomic(const std::string& path, const std::string& data);

// Writes all of `data` to an open descriptor; throws Error naming `path` on failure (ENOSPC...).
void write_all(int fd, const void* data, std::size_t size, const std::string& path);

// fsync a file or directory by path.
void fsync_path(const std::string& path);

// Renames atomically and fsyncs the parent directory of `to`.
void rename_durable(const std::string& from, const std::string& to);

// mkdir -p; throws Error naming the path.
void make_dirs(const std::string& path);

bool path_exists(const std::string& path);
std::string parent_dir(const std::string& path);

}  // namespace ldm
