// Errors that carry their context. Throw inside a process; catch at the boundary (CLI main,
// request handler, worker main loop) and turn into one clear message and a non-zero exit.
#pragma once

#include <stdexcept>
#include <string>

namespace ldm {

// Base of every error this project throws on purpose. what() is the full, user-facing message.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A problem in an experiment specification. `key_path` is the dotted key ("stage.0.steps"),
// `location` is "file:line:column" when known (filled by the TOML front end).
class SpecError : public Error {
 public:
  SpecError(std::string key_path, std::string message, std::string location = "");
  const std::string& key_path() const { return key_path_; }
  const std::string& detail() const { return detail_; }
  const std::string& location() const { return location_; }

 private:
  std::string key_path_, detail_, location_;
};

// A malformed, oversized, wrong-version or unauthenticated wire message.
class ProtocolError : public Error {
 public:
  using Error::Error;
};

// A store failure (I/O, corruption, schema mismatch). The message names the database path.
class StoreError : public Error {
 public:
  using Error::Error;
};

// A bad or corrupt data file. The message names the file and, where known, the record.
class DataError : public Error {
 public:
  using Error::Error;
};

// Formats errno into "<what>: <path>: <strerror>" and throws Error.
[[noreturn]] void throw_errno(const std::string& what, const std::string& path);

}  // namespace ldm
