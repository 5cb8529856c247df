#include "shared/core/ids.h"

#include <sys/random.h>

#include <cstdio>
#include <stdexcept>
#include <vector>

#include "shared/core/error.h"

namespace ldm {

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  std::size_t got = 0;
  while (got < bytes) {
    ssize_t n = getrandom(buf.data() + got, bytes - got, 0);
    if (n < 0) throw_errno("getrandom failed", "/dev/urandom");
    got += static_cast<std::size_t>(n);
  }
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : buf) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string make_run_id(const std::string& experiment, const std::string& stage, int attempt) {
  return experiment + "." + stage + ".a" + std::to_string(attempt);
}

std::uint64_t fnv1a64(const void* data, std::size_t size, std::uint64_t h) {
  auto p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t derive_seed_from_name(std::uint64_t seed, const std::string& purpose, std::uint64_t a, std::uint64_t b) {
  std::uint64_t h = mix64(seed);
  h = mix64(h ^ fnv1a64(purpose));
  h = mix64(h ^ a);
  h = mix64(h ^ (b + 0x632be59bd9b4e019ULL));
  return h;
}

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string step_dir_name(std::int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%07lld", static_cast<long long>(step));
  return buf;
}

}  // namespace ldm
