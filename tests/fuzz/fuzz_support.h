// What every fuzz harness shares (tests/fuzz/README.md).
//
// A harness hands the input to a reader and accepts exactly one way of refusing it: an ldm::Error
// (DataError, SpecError, ProtocolError, ...) whose message names the input's source. Any other
// exception (a library's own, std::out_of_range, std::bad_alloc), an Error that names no file,
// and every crash, leak, sanitizer report or oversized allocation (libFuzzer's -malloc_limit_mb)
// is a finding: the harness aborts and libFuzzer keeps the input.
#pragma once

#include <unistd.h>

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

// A directory of this process's own for readers that take a path (removed at exit). Under /dev/shm
// when there is one: the harness writes a file per input.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    namespace fs = std::filesystem;
    const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
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
