// Metric store throughput next to a plain file: batched ingest (points/s) as workers send them
// (append_metrics, one batch of B points + the run record per call) against appending the same
// 20-byte points to a file with write(2) per batch; then a curve query of all N points, and the
// same curve thinned to max_points (what `ldm-coord plot` fetches), against reading the file back.
// A benchmark prints figures; it asserts nothing.
//
//   build/bin/bench_store [--points N] [--batch B] [--max-points M] [--dir D]
//
// Defaults: N = 1,000,000 loss points (steps 0..N-1), B = 100 (a worker's flush), M = 2000.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "shared/core/records.h"
#include "shared/store/experiment_store.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

long arg(int argc, char** argv, const char* name, long fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::strtol(argv[i + 1], nullptr, 10);
  return fallback;
}

std::string text_arg(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const long n = arg(argc, argv, "--points", 1000000), batch = arg(argc, argv, "--batch", 100);
  const long max_points = arg(argc, argv, "--max-points", 2000);
  const std::filesystem::path dir =
      std::filesystem::path(text_arg(argc, argv, "--dir", "/tmp")) / ("ldm-bench-store-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::printf("bench_store: %ld points in batches of %ld, thinned to %ld; scratch %s\n", n, batch, max_points,
              dir.c_str());

  auto store = ldm::ExperimentStore::open((dir / "db").string());
  ldm::RunRecord run;
  run.id = "bench.train.a1";
  run.experiment = "bench";
  run.stage = "train";
  std::vector<ldm::MetricPoint> points;
  auto t0 = std::chrono::steady_clock::now();
  for (long step = 0; step < n; step += batch) {
    points.clear();
    for (long s = step; s < std::min(n, step + batch); ++s)
      points.push_back({"loss", s, 1.0 / double(s + 1), 1, 1.7e9 + double(s)});
    run.last_seq = step / batch + 1;
    store->append_metrics("bench", "train", points, run);
  }
  const double store_ingest = seconds_since(t0);

  // The same points appended to a plain file, 20 bytes each (attempt, value, time; step implied).
  const std::string file = (dir / "points.bin").string();
  const int fd = ::open(file.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_APPEND, 0644);
  t0 = std::chrono::steady_clock::now();
  std::vector<char> buf;
  for (long step = 0; step < n; step += batch) {
    buf.clear();
    for (long s = step; s < std::min(n, step + batch); ++s) {
      char rec[20];
      const std::uint32_t attempt = 1;
      const double value = 1.0 / double(s + 1), time = 1.7e9 + double(s);
      std::memcpy(rec, &attempt, 4);
      std::memcpy(rec + 4, &value, 8);
      std::memcpy(rec + 12, &time, 8);
      buf.insert(buf.end(), rec, rec + 20);
    }
    if (::write(fd, buf.data(), buf.size()) != ssize_t(buf.size())) {
      std::perror("write");
      return 1;
    }
  }
  ::close(fd);
  const double file_ingest = seconds_since(t0);
  std::printf("ingest  store %10.0f points/s (%.2f s)   file %12.0f points/s (%.3f s)   store/file time %.1fx\n",
              double(n) / store_ingest, store_ingest, double(n) / file_ingest, file_ingest, store_ingest / file_ingest);

  t0 = std::chrono::steady_clock::now();
  const std::size_t all = store->metrics("bench", "train", "loss").size();
  const double query_all = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  const std::size_t thin = store->metrics("bench", "train", "loss", std::size_t(max_points)).size();
  const double query_thin = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  std::vector<char> back(std::filesystem::file_size(file));
  const int rfd = ::open(file.c_str(), O_RDONLY);
  std::size_t got = 0;
  while (got < back.size()) {
    const ssize_t r = ::read(rfd, back.data() + got, back.size() - got);
    if (r <= 0) break;
    got += std::size_t(r);
  }
  ::close(rfd);
  const double read_file = seconds_since(t0);
  std::printf(
      "query   all %zu points %8.1f ms   max_points %ld -> %zu points %6.2f ms   file read %zu points %6.1f ms\n", all,
      query_all * 1e3, max_points, thin, query_thin * 1e3, got / 20, read_file * 1e3);
  store.reset();
  std::filesystem::remove_all(dir);
  return 0;
}
