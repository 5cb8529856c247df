#include "worker/comm/nccl_bootstrap.h"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "shared/core/error.h"
#include "shared/core/safe_file.h"

namespace ldm::worker {
namespace {

// The integer in variable `name`; throws Error naming it when it is set but not a number.
bool env_int(const char* name, long& out) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtol(v, &end, 10);
  if (*end != '\0' || errno != 0 || out < 0 || out > (1L << 24))
    throw Error(std::string("environment variable ") + name + "=\"" + v + "\" is not a rank or world size");
  return true;
}

constexpr const char* kMagic = "ldm-nccl-id";

std::string hex_encode(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

LaunchPlace launch_place_from_environment() {
  static const struct {
    const char *rank, *size;
  } kLaunchers[] = {{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
                    {"SLURM_PROCID", "SLURM_NTASKS"},
                    {"PMI_RANK", "PMI_SIZE"},
                    {"RANK", "WORLD_SIZE"},
                    {"LDM_RANK", "LDM_WORLD_SIZE"}};
  for (const auto& l : kLaunchers) {
    long rank = 0, size = 0;
    if (!env_int(l.rank, rank)) continue;
    if (!env_int(l.size, size))
      throw Error(std::string(l.rank) + " is set but " + l.size + " is not: cannot tell the world size");
    if (size < 1 || rank >= size)
      throw Error(std::string(l.rank) + "=" + std::to_string(rank) + " is outside a world of " + l.size + "=" +
                  std::to_string(size));
    return {static_cast<int>(rank), static_cast<int>(size), std::string(l.rank) + "/" + l.size};
  }
  return {};
}

std::string format_id_file(int world, const std::string& id) {
  return std::string(kMagic) + " 1 " + std::to_string(world) + " " + hex_encode(id) + "\n";
}

std::string parse_id_file(const std::string& text, std::size_t id_bytes, const std::string& path, int& world) {
  std::istringstream in(text);
  std::string magic, hex;
  int version = 0;
  world = 0;
  if (!(in >> magic >> version >> world >> hex) || magic != kMagic || version != 1 || world < 1)
    throw Error(path + ": not an NCCL id file of ldm-worker (expected \"" + kMagic + " 1 WORLD HEX\")");
  if (hex.size() != 2 * id_bytes)
    throw Error(path + ": the NCCL id has " + std::to_string(hex.size() / 2) + " bytes, expected " +
                std::to_string(id_bytes));
  std::string id(id_bytes, '\0');
  for (std::size_t i = 0; i < id_bytes; ++i) {
    const int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) throw Error(path + ": the NCCL id is not hexadecimal");
    id[i] = static_cast<char>(hi * 16 + lo);
  }
  return id;
}

std::string exchange_id_through_file(const std::string& path, int rank, int world, const std::string& root_id,
                                     std::size_t id_bytes, double timeout_s, const std::function<void(double)>& sleep) {
  if (rank == 0) {
    write_file_atomic(path, format_id_file(world, root_id));
    return root_id;
  }
  const auto wait = sleep ? sleep : [](double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); };
  const double poll = 0.05;
  std::string last_problem = "it does not exist";
  for (double waited = 0; waited <= timeout_s; waited += poll) {
    if (path_exists(path)) {
      int written_for = 0;
      const std::string id = parse_id_file(read_file(path), id_bytes, path, written_for);
      if (written_for == world) return id;
      // Another job's file (or this one's before rank 0 rewrote it): wait for ours.
      last_problem = "it was written for a world of " + std::to_string(written_for) + " ranks, this job has " +
                     std::to_string(world) + " (another job's file? put the job id in LDM_NCCL_ID_FILE)";
    }
    wait(poll);
  }
  throw Error("rank " + std::to_string(rank) + ": no NCCL id from rank 0 in " + path + " after " +
              std::to_string(static_cast<int>(timeout_s)) + " s: " + last_problem +
              " (LDM_NCCL_ID_TIMEOUT sets the wait)");
}

std::string nccl_id_from_environment(int rank, int world, std::size_t id_bytes,
                                     const std::function<std::string()>& make_id) {
  if (const char* addr = std::getenv("NCCL_COMM_ID"); addr && *addr) return make_id();
  const char* file = std::getenv("LDM_NCCL_ID_FILE");
  if (file == nullptr || *file == '\0')
    throw Error("rank " + std::to_string(rank) + " of " + std::to_string(world) +
                ": NCCL needs rank 0's id on every rank, and this process has no MPI to pass it; set "
                "NCCL_COMM_ID=HOST:PORT (rank 0's host and a free port) or LDM_NCCL_ID_FILE=PATH (a "
                "job-unique path on a filesystem every rank sees) for every rank");
  double timeout = 120;
  if (const char* t = std::getenv("LDM_NCCL_ID_TIMEOUT"); t && *t) {
    char* end = nullptr;
    timeout = std::strtod(t, &end);
    if (*end != '\0' || !(timeout >= 0))
      throw Error(std::string("LDM_NCCL_ID_TIMEOUT=\"") + t + "\" is not a number of seconds");
  }
  return exchange_id_through_file(file, rank, world, rank == 0 ? make_id() : std::string(), id_bytes, timeout);
}

}  // namespace ldm::worker
