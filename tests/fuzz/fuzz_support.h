// What every fuzz harness shares (tests/fuzz/README.md).
//
// A harness hands the input to a reader and accepts exactly one way of refusing it: an ldm::Error
// (DataError, SpecError, ProtocolError, ...) whose message names the input's source. Any other
// exception (a library's own, std::out_of_range, std::bad_alloc), an Error that names no file,
// and every crash, leak, sanitizer report or oversized allocation (libFuzzer's -malloc_limit_mb)
// is a finding: the harness aborts and libFuzzer keeps the input.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>
#include <typeinfo>

#include "shared/core/error.h"

namespace ldm::fuzz {

[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz finding: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// Runs `read`; returns true when it accepted the input, false when it refused it the one allowed way.
template <class F>
bool accepts(const std::string& source, F&& read) {
  try {
    read();
    return true;
  } catch (const ldm::Error& e) {
    const std::string message = e.what();
    if (!source.empty() && message.find(source) == std::string::npos)
      finding("the error does not name '" + source + "': " + message);
  } catch (const std::bad_alloc&) {
    finding("std::bad_alloc: an allocation sized by the input instead of a DataError");
  } catch (const std::exception& e) {
    finding(std::string("not an ldm::Error (") + typeid(e).name() + "): " + e.what());
  } catch (...) {
    finding("an exception that is not a std::exception");
  }
  return false;
}

// Reads a fuzz input front to back; past the end every read gives zeros / empty strings.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
  std::uint8_t byte() { return n_ ? (--n_, *p_++) : 0; }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t(byte()) << (8 * i);
    return v;
  }
  std::string bytes(std::size_t count) {
    count = count < n_ ? count : n_;
    std::string s(reinterpret_cast<const char*>(p_), count);
    p_ += count;
    n_ -= count;
    return s;
  }
  std::string rest() { return bytes(n_); }
  std::size_t left() const { return n_; }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

// Removes base/<prefix><pid>[-...] of every process that no longer runs. libFuzzer's fork mode ends
// its children with _Exit, so no destructor removes what a child made: without this, a 20-minute
// run left a thousand stores (75 MB of RocksDB files each) and filled the disk.
inline void remove_dirs_of_dead_processes(const std::filesystem::path& base, const std::string& prefix) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (fs::directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    char* stop = nullptr;
    const long pid = std::strtol(rest.c_str(), &stop, 10);
    if (stop == rest.c_str() || (*stop != '\0' && *stop != '-') || pid <= 0) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH) {
      std::error_code rm;
      fs::remove_all(it->path(), rm);
    }
  }
}

// A directory of this process's own, <temp>/<tag>-<pid>-<n>, for a harness's store and runs;
// removed by the destructor, or by the next harness process when this one was ended by _Exit.
class ProcessDir {
 public:
  explicit ProcessDir(const std::string& tag) {
    namespace fs = std::filesystem;
    static int made = 0;
    const fs::path base = fs::temp_directory_path();
    remove_dirs_of_dead_processes(base, tag + "-");
    path_ = (base / (tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(made++))).string();
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ProcessDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ProcessDir(const ProcessDir&) = delete;
  ProcessDir& operator=(const ProcessDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A directory of this process's own for readers that take a path (removed at exit, or by the next
// harness process). Under /dev/shm when there is one: the harness writes a file per input.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    namespace fs = std::filesystem;
    const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    remove_dirs_of_dead_processes(base, "ldm-fuzz-");
    const fs::path d = base / ("ldm-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(d);
    static struct Cleanup {
      fs::path p;
      ~Cleanup() {
        std::error_code ec;
        fs::remove_all(p, ec);
      }
    } cleanup{d};
    return d.string();
  }();
  return dir;
}

inline std::string write_scratch(const std::string& name, const std::string& bytes) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

}  // namespace ldm::fuzz

// libFuzzer's entry point, which every harness defines (replay_main.cpp calls it outside libFuzzer).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
