// Data-path throughput next to the disk's: the ImageNet import (images/s, input MB/s) and the
// rank loader (records/s, payload MB/s), each compared in the same run with reading the same files
// raw, so the gap to the I/O limit is visible. A benchmark prints figures; it asserts nothing.
//
//   build/bin/bench_data [--images N] [--size WxH] [--resolution R] [--threads T] [--batch B]
//                        [--prefetch P] [--dir D]
//
// It writes N JPEGs (quality 90, libjpeg-turbo, varied content) in the ImageNet layout
// train/<wnid>/*.JPEG (4 classes) under a fresh scratch directory made inside D (default /tmp),
// and removes that directory at the end. Stages:
//  - raw read of the source JPEGs (same files, same order, T threads): cold, then warm;
//  - ldm::data::import_imagenet into image shards (center crop R, T threads), started cold;
//  - raw read of the image shards (1 thread), cold and warm; RankLoader (rank 0 of 1, global
//    batch B, PatchAutoencoder(8)) over one epoch with prefetch 0 and P, each started cold;
//  - the same on latent shards written here from the image shards (PayloadKind::LatentF32,
//    encoder PatchAutoencoder(8)), where the loader runs no autoencoder.
// "Cold" is best effort: each file is fsync'ed and dropped with posix_fadvise(POSIX_FADV_DONTNEED);
// the fraction of its pages still resident afterwards (mincore) is printed. The loader part runs
// with at::set_num_threads(1).
#include <ATen/Parallel.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <torch/torch.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <jpeglib.h>  // after <cstdio>: it needs FILE and size_t

#include "datasets/format/shard.h"
#include "datasets/import/importers.h"
#include "datasets/tensor/autoencoder.h"
#include "datasets/tensor/loader.h"
#include "datasets/tensor/record_encoding.h"
#include "shared/core/cli.h"

namespace fs = std::filesystem;
using namespace ldm::data;

namespace {

struct Options {
  int images = 512, width = 500, height = 375, resolution = 256, threads = 0, batch = 64, prefetch = 2;
  std::string dir = "/tmp";
};

Options parse(const ldm::cli::Args& a) {
  Options o;
  o.images = static_cast<int>(a.integer("images", o.images));
  if (a.has("size")) {
    const std::string v = a.text("size");
    char tail = 0;
    if (std::sscanf(v.c_str(), "%dx%d%c", &o.width, &o.height, &tail) != 2 || o.width < 1 || o.height < 1)
      throw ldm::cli::UsageError("--size: bad value '" + v + "' (WxH, e.g. 500x375)");
  }
  o.resolution = static_cast<int>(a.integer("resolution", o.resolution));
  if (o.resolution % 8 != 0) throw ldm::cli::UsageError("--resolution must be a multiple of 8 (PatchAutoencoder(8))");
  o.threads = static_cast<int>(a.integer("threads", std::max(1u, std::thread::hardware_concurrency())));
  o.batch = static_cast<int>(a.integer("batch", o.batch));
  o.prefetch = static_cast<int>(a.integer("prefetch", o.prefetch));
  o.dir = a.text("dir", o.dir);
  return o;
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Runs fn(i) for i in [0, n) on `threads` threads, each taking the next index in order.
template <class F>
void parallel_for(std::size_t n, int threads, F fn) {
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mu;
  auto work = [&] {
    try {
      for (std::size_t i; (i = next.fetch_add(1)) < n;) fn(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
      next = n;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

// ---- source images ------------------------------------------------------------------------

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct Rng {
  std::uint64_t s;
  double uniform() { return static_cast<double>(splitmix64(s) >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
};

// A w x h RGB picture that differs per image: a two-colour gradient, oriented gratings, a few
// filled ellipses and rectangles, and per-pixel noise of a random strength, so JPEG sizes and
// decode work look like photographs' rather than flat test cards'.
std::vector<std::uint8_t> make_picture(int w, int h, std::uint64_t seed) {
  Rng rng{seed * 0x2545F4914F6CDD1Dull + 1};
  double c0[3], c1[3];
  for (int c = 0; c < 3; ++c) c0[c] = rng.uniform(0, 255), c1[c] = rng.uniform(0, 255);
  const double angle = rng.uniform(0, 2 * M_PI), ca = std::cos(angle), sa = std::sin(angle);
  struct Grating {
    double fx, fy, phase, amp[3];
  } gratings[3];
  for (auto& g : gratings) {
    const double f = rng.uniform(0.005, 0.6), th = rng.uniform(0, M_PI);
    g.fx = f * std::cos(th), g.fy = f * std::sin(th), g.phase = rng.uniform(0, 2 * M_PI);
    for (double& a : g.amp) a = rng.uniform(0, 35);
  }
  struct Shape {
    bool ellipse;
    double cx, cy, rx, ry, col[3], alpha;
  };
  std::vector<Shape> shapes(4 + static_cast<int>(rng.uniform(0, 12)));
  for (auto& s : shapes) {
    s.ellipse = rng.uniform() < 0.5;
    s.cx = rng.uniform(0, w), s.cy = rng.uniform(0, h);
    s.rx = rng.uniform(0.03, 0.3) * w, s.ry = rng.uniform(0.03, 0.3) * h;
    for (double& c : s.col) c = rng.uniform(0, 255);
    s.alpha = rng.uniform(0.3, 1.0);
  }
  const double noise = rng.uniform(20, 50);  // tuned: 500x375 q90 files average ~100 KB (ImageNet: ~110 KB)
  std::vector<std::uint8_t> rgb(static_cast<std::size_t>(w) * h * 3);
  std::uint64_t noise_state = seed ^ 0xD1B54A32D192ED03ull;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const double t = std::clamp(0.5 + ((x - w / 2.0) * ca + (y - h / 2.0) * sa) / (w + h), 0.0, 1.0);
      double px[3];
      for (int c = 0; c < 3; ++c) px[c] = c0[c] + (c1[c] - c0[c]) * t;
      for (const auto& g : gratings) {
        const double v = std::sin(g.fx * x + g.fy * y + g.phase);
        for (int c = 0; c < 3; ++c) px[c] += g.amp[c] * v;
      }
      for (const auto& s : shapes) {
        const double dx = (x - s.cx) / s.rx, dy = (y - s.cy) / s.ry;
        const bool inside = s.ellipse ? dx * dx + dy * dy <= 1.0 : std::fabs(dx) <= 1.0 && std::fabs(dy) <= 1.0;
        if (inside)
          for (int c = 0; c < 3; ++c) px[c] += (s.col[c] - px[c]) * s.alpha;
      }
      const std::uint64_t r = splitmix64(noise_state);
      for (int c = 0; c < 3; ++c) {
        const double n = (static_cast<double>((r >> (16 * c)) & 0xFFFF) / 65535.0 - 0.5) * 2 * noise;
        rgb[(static_cast<std::size_t>(y) * w + x) * 3 + c] =
            static_cast<std::uint8_t>(std::clamp(std::lround(px[c] + n), 0L, 255L));
      }
    }
  }
  return rgb;
}

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Baseline JPEG, quality 90, 4:2:0 (libjpeg's default, as PIL's), written with libjpeg-turbo.
void write_jpeg(const std::string& path, const std::vector<std::uint8_t>& rgb, int w, int h) {
  jpeg_compress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit;
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    std::free(buffer);
    throw std::runtime_error(path + ": libjpeg: " + err.message);
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = static_cast<JDIMENSION>(w);
  cinfo.image_height = static_cast<JDIMENSION>(h);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 90, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(rgb.data() + static_cast<std::size_t>(cinfo.next_scanline) * w * 3);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(buffer), static_cast<std::streamsize>(size));
  std::free(buffer);
  if (!out.flush()) throw std::runtime_error(path + ": write failed");
}

// ---- raw reads and the page cache ---------------------------------------------------------

std::uint64_t file_size(const std::string& path) { return fs::file_size(path); }

std::uint64_t total_size(const std::vector<std::string>& files) {
  std::uint64_t n = 0;
  for (const auto& f : files) n += file_size(f);
  return n;
}

// Best effort: write back, then ask the kernel to drop the files' cached pages.
void drop_cache(const std::vector<std::string>& files) {
  for (const auto& f : files) {
    const int fd = ::open(f.c_str(), O_RDONLY);
    if (fd < 0) throw std::runtime_error(f + ": open: " + std::strerror(errno));
    ::fsync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

// Fraction of the files' pages in the page cache (mincore), or -1 if it cannot be told.
double resident_fraction(const std::vector<std::string>& files) {
  const long page = ::sysconf(_SC_PAGESIZE);
  std::uint64_t pages = 0, resident = 0;
  for (const auto& f : files) {
    const std::uint64_t size = file_size(f);
    if (size == 0) continue;
    const int fd = ::open(f.c_str(), O_RDONLY);
    if (fd < 0) return -1;
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (map == MAP_FAILED) return -1;
    std::vector<unsigned char> vec((size + page - 1) / page);
    const bool ok = ::mincore(map, size, vec.data()) == 0;
    ::munmap(map, size);
    if (!ok) return -1;
    pages += vec.size();
    for (unsigned char v : vec) resident += v & 1;
  }
  return pages ? static_cast<double>(resident) / pages : 0.0;
}

// Reads every file whole with read() of `chunk` bytes, files taken in list order by `threads`
// threads. Returns the seconds taken.
double raw_read(const std::vector<std::string>& files, int threads, std::size_t chunk) {
  std::atomic<std::uint64_t> bytes{0};
  const double start = now();
  parallel_for(files.size(), threads, [&](std::size_t i) {
    thread_local std::vector<char> buffer;
    buffer.resize(chunk);
    const int fd = ::open(files[i].c_str(), O_RDONLY);
    if (fd < 0) throw std::runtime_error(files[i] + ": open: " + std::strerror(errno));
    std::uint64_t n = 0;
    for (ssize_t got; (got = ::read(fd, buffer.data(), chunk)) != 0;) {
      if (got < 0) {
        if (errno == EINTR) continue;
        ::close(fd);
        throw std::runtime_error(files[i] + ": read: " + std::strerror(errno));
      }
      n += static_cast<std::uint64_t>(got);
    }
    ::close(fd);
    bytes += n;
  });
  const double seconds = now() - start;
  if (bytes != total_size(files)) throw std::runtime_error("raw read: short read");
  return seconds;
}

// ---- results ------------------------------------------------------------------------------

struct Row {
  std::string stage;
  double seconds = 0, items = 0, bytes = 0;
  int reference = -1;  // index into `refs` (the raw reads of the same files)
  double rate() const { return items / seconds; }
};

struct Reference {
  double cold = 0, warm = 0;  // items/s of the raw reads
};

std::vector<Row> rows;
std::vector<Reference> refs;

void report(const Row& r) {
  rows.push_back(r);
  std::printf("  %-44s %8.3f s %10.1f items/s %9.1f MB/s\n", r.stage.c_str(), r.seconds, r.rate(),
              r.bytes / 1e6 / r.seconds);
  std::fflush(stdout);
}

// Cold then warm raw read of `files`, as two rows and a new reference; returns its index.
int raw_pair(const std::string& what, const std::vector<std::string>& files, double items, int threads,
             std::size_t chunk) {
  const double bytes = static_cast<double>(total_size(files));
  drop_cache(files);
  const double resident = resident_fraction(files);
  const double cold = raw_read(files, threads, chunk);
  const double warm = raw_read(files, threads, chunk);
  const int ref = static_cast<int>(refs.size());
  refs.push_back({items / cold, items / warm});
  const std::string t = " (" + std::to_string(threads) + " thr)";
  report({what + ": raw read, cold" + t, cold, items, bytes, ref});
  if (resident > 0.01) std::printf("    note: %.0f%% of the pages were still cached after the drop\n", 100 * resident);
  report({what + ": raw read, warm" + t, warm, items, bytes, ref});
  return ref;
}

std::string fs_type(const std::string& path) {
  struct statfs s;
  if (::statfs(path.c_str(), &s) != 0) return "?";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53:
      return "ext2/3/4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs (cold reads are not possible: RAM-backed)";
    case 0x794C7630:
      return "overlayfs";
    case 0x6969:
      return "nfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(s.f_type));
      return buf;
    }
  }
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  return "?";
}

double mem_total_gib() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kib = 0;
  while (in >> key >> kib)
    if (key == "MemTotal:") return kib / (1024.0 * 1024.0);
  return 0;
}

// ---- loader -------------------------------------------------------------------------------

// One epoch of RankLoader (rank 0 of 1) over `dir`, started cold; the timing includes opening the
// dataset and starting the prefetch threads.
Row run_loader(const std::string& what, const std::string& dir, const std::shared_ptr<const Autoencoder>& ae,
               const Options& o, int prefetch, int reference) {
  drop_cache(list_shards(dir));
  volatile double sink = 0;
  const double start = now();
  auto data = std::make_shared<const ShardDataset>(dir);
  const auto records = static_cast<std::int64_t>(data->size());
  const std::int64_t steps = (records + o.batch - 1) / o.batch;
  LoaderOptions lo;
  lo.prefetch = prefetch;
  RankLoader loader(data, ae, /*seed=*/0, o.batch, /*rank=*/0, /*world_size=*/1, lo);
  double payload = 0;
  std::size_t payload_per_record = data->read(0).payload.size();
  for (std::int64_t s = 0; s < steps; ++s) {
    const Batch b = loader.batch_for_step(s);
    sink = sink + b.latents.size(0);
    payload += static_cast<double>(b.ids.size() * payload_per_record);
  }
  const double seconds = now() - start;
  (void)sink;
  return {what + ", prefetch " + std::to_string(prefetch), seconds, static_cast<double>(steps * o.batch), payload,
          reference};
}

// Latent shards made from the image shards: the patch autoencoder's latents (f32 CHW), same file
// names, same records, header kind LatentF32 and encoder = its identity.
void write_latent_shards(const std::string& image_dir, const std::string& latent_dir,
                         const std::shared_ptr<const Autoencoder>& ae) {
  fs::create_directories(latent_dir);
  const TorchRecordEncoder encoder(ae, nullptr, nullptr, 16);
  for (const auto& path : list_shards(image_dir)) {
    ShardReader in(path);
    ShardHeader header = in.header();
    header.kind = PayloadKind::LatentF32;
    header.encoder = ae->identity();
    header.text_encoder = "";
    ShardWriter out((fs::path(latent_dir) / fs::path(path).filename()).string(), header);
    constexpr std::size_t chunk = 64;
    for (std::size_t i = 0; i < in.size(); i += chunk) {
      std::vector<Record> records;
      for (std::size_t k = i; k < std::min(in.size(), i + chunk); ++k) records.push_back(in.read(k));
      encoder.encode(records, std::vector<std::string>(records.size()), path);
      for (const auto& r : records) out.append(r);
    }
    out.finish();
  }
}

// ---- table --------------------------------------------------------------------------------

void print_table() {
  std::printf("\n%-46s %8s %8s %10s %9s %9s %9s\n", "stage", "seconds", "items", "items/s", "MB/s", "/raw cold",
              "/raw warm");
  for (const Row& r : rows) {
    const Reference& ref = refs.at(static_cast<std::size_t>(r.reference));
    std::printf("%-46s %8.3f %8.0f %10.1f %9.1f %9.2f %9.2f\n", r.stage.c_str(), r.seconds, r.items, r.rate(),
                r.bytes / 1e6 / r.seconds, r.rate() / ref.cold, r.rate() / ref.warm);
  }
}

int run(const Options& o, int argc, char** argv);

}  // namespace

int main(int argc, char** argv) {
  using namespace ldm::cli;
  const Program program{
      "bench_data",
      "",
      {{"",
        {},
        "Import and loader throughput next to raw reads of the same files (prints figures).",
        {integer("images", "N", "source JPEGs (default 512), ImageNet layout, 4 classes", 1, 1e9),
         text("size", "WxH", "source JPEG size (default 500x375)"),
         integer("resolution", "R", "import center crop, a multiple of 8 (default 256)", 8, 1e9),
         integer("threads", "T", "import threads, and those of its raw-read reference (default: all cores)", 1, 1e9),
         integer("batch", "B", "loader global batch (default 64)", 1, 1e9),
         integer("prefetch", "P", "loader prefetch, compared with 0 (default 2)", 0, 1e9),
         text("dir", "D", "where the scratch directory is made (default /tmp); it is removed at the end")},
        [&](const Args& a) { return run(parse(a), argc, argv); }}}};
  return ldm::cli::run(program, argc, argv);
}

namespace {

int run(const Options& o, int argc, char** argv) {
  std::string command = "bench_data";
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];

  fs::create_directories(o.dir);
  std::string pattern = (fs::path(o.dir) / "ldm-bench-data-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) {
    std::fprintf(stderr, "bench_data: mkdtemp in %s: %s\n", o.dir.c_str(), std::strerror(errno));
    return 1;
  }
  const fs::path scratch = pattern;

  std::printf("command: %s\n", command.c_str());
  std::printf("machine: %u hardware threads (%s), %.1f GiB RAM; LibTorch %s, ATen intra-op threads %d\n",
              std::thread::hardware_concurrency(), cpu_model().c_str(), mem_total_gib(), TORCH_VERSION,
              at::get_num_threads());
  std::printf("scratch: %s (%s)\n", scratch.c_str(), fs_type(scratch.string()).c_str());
  std::printf(
      "settings: %d images %dx%d JPEG q90, import --resolution %d center crop, %d import thread(s); "
      "loader global batch %d, prefetch 0 vs %d\n",
      o.images, o.width, o.height, o.resolution, o.threads, o.batch, o.prefetch);
  std::printf("ratios: items/s of the stage / items/s of the raw read of the same files (cold, warm)\n");
  std::printf("cold = best effort: fsync + posix_fadvise(POSIX_FADV_DONTNEED) per file before the measurement\n\n");
  std::fflush(stdout);

  int rc = 0;
  try {
    // ---- source JPEGs
    const std::vector<std::string> wnids = {"n01440764", "n01443537", "n01484850", "n01491361"};
    const fs::path root = scratch / "imagenet";
    for (const auto& w : wnids) fs::create_directories(root / "train" / w);
    std::vector<std::string> rel(static_cast<std::size_t>(o.images));
    for (int i = 0; i < o.images; ++i) {
      const auto& w = wnids[static_cast<std::size_t>(i) % wnids.size()];
      char name[64];
      std::snprintf(name, sizeof name, "%s_%06d.JPEG", w.c_str(), i);
      rel[static_cast<std::size_t>(i)] = w + "/" + name;
    }
    double start = now();
    parallel_for(rel.size(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())), [&](std::size_t i) {
      write_jpeg((root / "train" / rel[i]).string(), make_picture(o.width, o.height, i), o.width, o.height);
    });
    // The importer's input order: sorted by path under the split directory.
    std::sort(rel.begin(), rel.end());
    std::vector<std::string> sources;
    for (const auto& r : rel) sources.push_back((root / "train" / r).string());
    const std::uint64_t source_bytes = total_size(sources);
    std::printf("made %d JPEGs in %.1f s: %.1f MB, %.1f KB each on average\n", o.images, now() - start,
                source_bytes / 1e6, source_bytes / 1e3 / o.images);

    // ---- import
    std::printf("\nimport (items = images; MB = source JPEG bytes)\n");
    const int import_ref = raw_pair("source JPEGs", sources, o.images, o.threads, 1 << 20);
    const std::string image_dir = (scratch / "shards-image").string();
    ImportOptions io;
    io.crop.strategy = CropStrategy::Center;
    io.crop.size = o.resolution;
    io.threads = o.threads;
    drop_cache(sources);
    start = now();
    const ImportSummary sum = import_imagenet(root.string(), image_dir, ImageNetOptions{}, io);
    const double import_s = now() - start;
    if (sum.skipped_total() != 0) std::printf("%s\n", format_import_summary(sum).c_str());
    report({"import_imagenet (cold start, " + std::to_string(o.threads) + " thr)", import_s,
            static_cast<double>(sum.images_kept), static_cast<double>(sum.bytes_read), import_ref});

    // ---- loader
    at::set_num_threads(1);
    std::printf(
        "\nloader (at::set_num_threads(1); rank 0 of 1, one epoch = ceil(records/B) steps, each started "
        "cold;\n        items = records; loader MB = payload bytes, raw MB = shard file bytes)\n");
    auto ae = std::make_shared<const PatchAutoencoder>(8);
    const auto image_shards = list_shards(image_dir);
    const int image_ref = raw_pair("image shards", image_shards, static_cast<double>(sum.records), 1, 1 << 20);
    if (o.prefetch != 0) report(run_loader("loader, image shards (+ AE)", image_dir, ae, o, 0, image_ref));
    report(run_loader("loader, image shards (+ AE)", image_dir, ae, o, o.prefetch, image_ref));

    const std::string latent_dir = (scratch / "shards-latent").string();
    start = now();
    write_latent_shards(image_dir, latent_dir, ae);
    std::printf("  (latent shards written in %.2f s: PatchAutoencoder(8) f32 latents, %dx%dx%d per record)\n",
                now() - start, ae->latent_channels(), o.resolution / 8, o.resolution / 8);
    const int latent_ref =
        raw_pair("latent shards", list_shards(latent_dir), static_cast<double>(sum.records), 1, 1 << 20);
    if (o.prefetch != 0) report(run_loader("loader, latent shards", latent_dir, ae, o, 0, latent_ref));
    report(run_loader("loader, latent shards", latent_dir, ae, o, o.prefetch, latent_ref));

    print_table();
    std::printf(
        "\nnotes: raw reads are sequential 1 MiB read()s per file; the loader reads records by pread in a "
        "shuffled order\n       with 1 prefetch thread. Import and loader rows are started cold, so "
        "/raw cold is the like-for-like ratio.\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_data: %s\n", e.what());
    rc = 1;
  }
  std::error_code ec;
  fs::remove_all(scratch, ec);
  if (ec) std::fprintf(stderr, "bench_data: could not remove %s: %s\n", scratch.c_str(), ec.message().c_str());
  return rc;
}

}  // namespace
