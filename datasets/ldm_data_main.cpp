// ldm-data: make and check shard datasets.
//   ldm-data synth --out DIR [--records N] [--classes C] [--resolution R] [--seed S]
//   [--shard-records K] ldm-data inspect SHARD [--records K]
//   ldm-data verify DIR [--max-problems N]
//   ldm-data stats DIR [--json]
//   ldm-data import-imagenet ROOT --out DIR [--split train|val] [crop options...]
//   ldm-data import-wds 'PATTERN-{00000..00099}.tar' --out DIR [crop options...]
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "datasets/dataset_tools.h"
#include "datasets/encoder_process.h"
#include "datasets/importers.h"
#include "datasets/shard.h"
#include "datasets/synthetic.h"
#include "shared/core/error.h"
#include "shared/core/safe_file.h"
#include "shared/core/text.h"

namespace {

using ldm::data::Record;

constexpr const char* kUsage =
    "usage: ldm-data <command> [options]\n"
    "\n"
    "commands:\n"
    "  synth     render the synthetic class-conditional dataset into shards\n"
    "  inspect   print a shard's header, statistics and first records; verify every checksum\n"
    "  verify    check every shard of a directory: checksums, index, footer, unique ids, headers\n"
    "  stats     counts per class and shape, caption lengths, control metadata, channel mean/std\n"
    "  import-imagenet  import an ImageNet folder (train/<wnid>/*.JPEG, val) into image shards\n"
    "  import-wds       import WebDataset tars (key.jpg|png|webp + key.txt [+ key.json])\n"
    "\n"
    "Run 'ldm-data <command> --help' for a command's options.\n";

constexpr const char* kSynthUsage =
    "usage: ldm-data synth --out DIR [--records N] [--classes C] [--resolution R] [--seed S]\n"
    "                      [--shard-records K]\n"
    "\n"
    "Renders coloured shapes (class = shape + colour) with captions and crop/flip metadata into\n"
    "DIR/synth-NNNNN.ldms plus DIR/dataset.json. An existing DIR with the same parameters is\n"
    "reused; one with different parameters is an error.\n"
    "\n"
    "  --out DIR            output directory (required)\n"
    "  --records N          number of records (default 1024)\n"
    "  --classes C          number of classes, at most 80 (default 10)\n"
    "  --resolution R       image side in pixels, 8..1024 (default 32)\n"
    "  --seed S             random seed (default 0)\n"
    "  --shard-records K    records per shard file (default 256)\n";

constexpr const char* kInspectUsage =
    "usage: ldm-data inspect SHARD [--records K]\n"
    "\n"
    "Prints the header, record count, label histogram, caption lengths and payload shapes, then\n"
    "the first K records. Reads every record and verifies its checksum: exits 1 if any is "
    "corrupt.\n"
    "\n"
    "  --records K          how many records to print (default 3)\n";

constexpr const char* kVerifyUsage =
    "usage: ldm-data verify DIR [--max-problems N]\n"
    "\n"
    "Checks every DIR/*.ldms shard: header, footer and index, every record's length and checksum,\n"
    "that record ids are unique across the directory, and that every shard agrees with the first\n"
    "on payload kind, encoder and channel count. Goes on past each problem and names the shard,\n"
    "record number and id of each. Progress goes to stderr. Exits 0 only when nothing is wrong.\n"
    "\n"
    "  --max-problems N     how many problems to print (default 100; all are counted)\n";

constexpr const char* kStatsUsage =
    "usage: ldm-data stats DIR [--json]\n"
    "\n"
    "Streams every record of DIR/*.ldms and prints: records per class and per payload shape,\n"
    "caption length in words and characters, the range of original and crop sizes and the flip\n"
    "fraction, and the per-channel mean and std of the payload (pixels in [0,1], or latents with\n"
    "a suggested scale factor = 1/std over all latent values, as LDM's scale_factor). Records\n"
    "that fail their checksum are skipped and counted.\n"
    "\n"
    "  --json               print JSON instead of a table\n";

#define LDM_IMPORT_CROP_OPTIONS                                                                      \
  "  --out DIR            output directory (required)\n"                                             \
  "  --resolution R       output side in pixels (default 256)\n"                                     \
  "  --crop S             center | random | random_resized (default center)\n"                       \
  "  --flip P             horizontal flip probability (default 0)\n"                                 \
  "  --views K            augmented views per image (default 1)\n"                                   \
  "  --seed S             augmentation seed (default 0)\n"                                           \
  "  --threads T          decoding threads (default: hardware concurrency)\n"                        \
  "  --buckets            aspect-ratio buckets: crop each image to the bucket nearest its aspect\n"  \
  "                       (sides multiples of --bucket-step, area <= R^2, aspect <= --bucket-max-\n" \
  "                       aspect; defaults 32 and 2, our choice, not the paper's)\n"                 \
  "Encoding (runs the LibTorch child `ldm-encode --serve`; shards then hold latents and/or\n"        \
  "caption features, and their headers name the encoders):\n"                                        \
  "  --vae PATH           TorchScript VAE (tools/export/export_vae.py), or patch:F for the\n"        \
  "                       built-in patch autoencoder (tests; not comparable with a real VAE)\n"      \
  "  --text-encoder PATH  TorchScript text encoder (tools/export/export_text_encoder.py) with\n"     \
  "                       --tokenizer MODEL (SentencePiece), or 'builtin' (with --text-dim D)\n"     \
  "  --max-tokens N       caption token slots (default 120)\n"                                       \
  "  --text-embeddings F  precomputed caption features: .npz file(s), a brace pattern, with\n"       \
  "                       keys [N] (sample keys), tokens [N,L,D], optional lengths/mask, pooled\n"   \
  "  --encode-batch B     images / captions per encoder forward (default 16)\n"

constexpr const char* kImportImageNetUsage =
    "usage: ldm-data import-imagenet ROOT --out DIR [--split train|val] [--resolution R]\n"
    "                      [--crop center|random|random_resized] [--flip P] [--views K]\n"
    "                      [--seed S] [--shard-records N] [--threads T] [--val-labels FILE]\n"
    "                      [--vae PATH] [--text-encoder PATH --tokenizer MODEL | --text-embeddings F]\n"
    "\n"
    "Decodes ROOT/train/<wnid>/*.JPEG (or ROOT/val) in parallel, crops each image and writes\n"
    "DIR/imagenet-<split>-NNNNN.ldms plus DIR/dataset.json. Class index = position of the wnid in\n"
    "the sorted list of ROOT/train's folder names (torchvision ImageFolder; the standard\n"
    "0..999 order for ILSVRC-2012). Validation: ROOT/val/<wnid>/* folders, or a flat ROOT/val with\n"
    "--val-labels FILE holding either 'ILSVRC2012_val_00000001.JPEG n01751748' lines (file name\n"
    "and wnid or class index) or one wnid / class index per line in sorted file-name order.\n"
    "Unreadable or truncated images are skipped, counted and named. Shard k always holds images\n"
    "[k*N, (k+1)*N) of the sorted list: a rerun keeps complete shards and redoes the rest.\n"
    "\n" LDM_IMPORT_CROP_OPTIONS
    "  --split S            train | val (default train)\n"
    "  --shard-records N    input images per shard (default 1024)\n"
    "  --val-labels FILE    labels of a flat ROOT/val\n";

constexpr const char* kImportWdsUsage =
    "usage: ldm-data import-wds 'PATTERN-{00000..00099}.tar' --out DIR [--resolution R]\n"
    "                      [--crop center|random|random_resized] [--flip P] [--views K]\n"
    "                      [--seed S] [--threads T] [--vae PATH]\n"
    "                      [--text-encoder PATH --tokenizer MODEL | --text-embeddings F]\n"
    "\n"
    "Reads WebDataset tars (brace ranges keep their zero padding; quote the pattern), groups\n"
    "members by key (path up to the first '.' of the file name): an image (.jpg .jpeg .png .webp),\n"
    "a caption (.txt) and an optional .json whose original_width/original_height (or\n"
    "width/height) become the record's original size. Samples without an image or caption are\n"
    "skipped and counted. Tar k becomes DIR/wds-NNNNN.ldms (tars run in parallel); a rerun keeps\n"
    "complete shards. Labels are -1.\n"
    "\n" LDM_IMPORT_CROP_OPTIONS;

// A command-line mistake: reported with the command's usage, exit status 2.
struct UsageError : std::runtime_error {
  UsageError(const std::string& message, const char* usage) : std::runtime_error(message), usage(usage) {}
  const char* usage;
};

struct Args {
  std::map<std::string, std::string> options;  // "records" -> "100"
  std::vector<std::string> positionals;
  std::set<std::string> flags;  // options without a value: "json"
  bool help = false;
};

// Accepts "--name value" and "--name=value" for the `known` option names, and "--name" alone for
// the `known_flags`.
Args parse_args(int argc, char** argv, const std::vector<std::string>& known,
                const std::vector<std::string>& known_flags, const char* usage) {
  Args args;
  std::vector<std::string> flags;  // for "did you mean"
  for (const auto& k : known) flags.push_back("--" + k);
  for (const auto& k : known_flags) flags.push_back("--" + k);
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      args.help = true;
    } else if (ldm::starts_with(arg, "--")) {
      const auto eq = arg.find('=');
      const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      if (std::find(known_flags.begin(), known_flags.end(), name) != known_flags.end()) {
        if (eq != std::string::npos) throw UsageError("option '--" + name + "' takes no value", usage);
        args.flags.insert(name);
        continue;
      }
      if (std::find(known.begin(), known.end(), name) == known.end())
        throw UsageError("unknown option '--" + name + "'" + ldm::did_you_mean("--" + name, flags), usage);
      if (eq != std::string::npos) {
        args.options[name] = arg.substr(eq + 1);
      } else if (i + 1 < argc) {
        args.options[name] = argv[++i];
      } else {
        throw UsageError("option '--" + name + "' needs a value", usage);
      }
    } else if (arg.size() > 1 && arg[0] == '-') {
      throw UsageError("unknown option '" + arg + "'", usage);
    } else {
      args.positionals.push_back(arg);
    }
  }
  return args;
}

std::int64_t int_option(const Args& args, const std::string& name, std::int64_t fallback, const char* usage) {
  const auto it = args.options.find(name);
  if (it == args.options.end()) return fallback;
  std::size_t used = 0;
  try {
    const long long v = std::stoll(it->second, &used);
    if (used == it->second.size()) return v;
  } catch (const std::exception&) {  // not a number or out of range: reported below
  }
  throw UsageError("option '--" + name + "' expects an integer, got '" + it->second + "'", usage);
}

int run_synth(const Args& args) {
  if (!args.positionals.empty())
    throw UsageError("synth takes no positional arguments (got '" + args.positionals[0] + "')", kSynthUsage);
  const auto out = args.options.find("out");
  if (out == args.options.end()) throw UsageError("synth needs --out DIR", kSynthUsage);
  const std::string dir = out->second;
  ldm::data::SyntheticParams p;
  p.records = int_option(args, "records", p.records, kSynthUsage);
  p.classes = int_option(args, "classes", p.classes, kSynthUsage);
  p.resolution = int_option(args, "resolution", p.resolution, kSynthUsage);
  p.seed = int_option(args, "seed", p.seed, kSynthUsage);
  p.shard_records = int_option(args, "shard-records", p.shard_records, kSynthUsage);

  const bool reused = ldm::path_exists(dir + "/dataset.json");
  const auto start = std::chrono::steady_clock::now();
  ldm::data::ensure_synthetic_dataset(p, dir, [&](std::int64_t done, std::int64_t total) {
    if (reused) return;
    std::fprintf(stderr, "\rldm-data: rendered %lld/%lld records", static_cast<long long>(done),
                 static_cast<long long>(total));
    if (done == total) std::fputc('\n', stderr);
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const std::vector<std::string> shards = ldm::data::list_shards(dir);
  std::uintmax_t bytes = 0;
  for (const auto& s : shards) bytes += std::filesystem::file_size(s);
  std::printf("dataset:   %s%s\n", ldm::data::synthetic_identity(p).c_str(),
              reused ? " (reused existing directory)" : "");
  std::printf("directory: %s\n", dir.c_str());
  std::printf("records:   %lld\n", static_cast<long long>(p.records));
  std::printf("shards:    %zu\n", shards.size());
  std::printf("bytes:     %ju\n", bytes);
  std::printf("seconds:   %.3f", seconds);
  if (!reused && seconds > 0) std::printf(" (%.0f records/s)", p.records / seconds);
  std::printf("\nclasses:   %lld\n", static_cast<long long>(p.classes));
  for (std::int64_t k = 0; k < p.classes; ++k)
    std::printf("  %3lld  %s\n", static_cast<long long>(k), ldm::data::synthetic_class_name(k).c_str());
  return 0;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::vector<std::string> dims;
  for (auto d : shape) dims.push_back(std::to_string(d));
  return "{" + ldm::join(dims, ", ") + "}";
}

// "3 (red circle)" for synthetic shards, where the label's name is known.
std::string label_text(std::int32_t label, const ldm::data::ShardHeader& header) {
  if (label < 0) return "none";
  std::string text = std::to_string(label);
  if (ldm::starts_with(header.dataset, "synthetic-")) {
    try {
      text += " (" + ldm::data::synthetic_class_name(label) + ")";
    } catch (const ldm::DataError&) {  // a label beyond the synthetic palette: show the number
    }
  }
  return text;
}

void print_record(const Record& r, const ldm::data::ShardHeader& header) {
  const auto& c = r.control;
  std::printf("record id %llu\n", static_cast<unsigned long long>(r.id));
  std::printf("  label:   %s\n", label_text(r.label, header).c_str());
  std::printf("  caption: \"%s\"\n", r.caption.c_str());
  std::printf("  control: original %dx%d (h x w), crop top %d left %d size %dx%d, flip %s\n", c.orig_h, c.orig_w,
              c.crop_top, c.crop_left, c.crop_h, c.crop_w, c.flip ? "yes" : "no");
  std::printf("  payload: %s, %zu bytes\n", shape_text(r.shape).c_str(), r.payload.size());
  if (header.views > 1) std::printf("  view:    %u of %d\n", static_cast<unsigned>(r.view), header.views);
  if (r.text_len > 0)
    std::printf("  caption features: %d tokens x %d (pooled norm %.4g)\n", r.text_len, r.text_dim, [&] {
      double n = 0;
      for (float v : r.text_pooled) n += static_cast<double>(v) * v;
      return std::sqrt(n);
    }());
}

int run_inspect(const Args& args) {
  if (args.positionals.size() != 1) throw UsageError("inspect needs exactly one SHARD argument", kInspectUsage);
  const std::int64_t show = int_option(args, "records", 3, kInspectUsage);
  if (show < 0) throw UsageError("option '--records' must be >= 0", kInspectUsage);

  const ldm::data::ShardReader reader(args.positionals[0]);
  const auto& h = reader.header();
  std::printf("shard:          %s\n", reader.path().c_str());
  std::printf("format version: %u\n", h.format_version);
  std::printf("kind:           %s\n", ldm::data::to_string(h.kind));
  std::printf("encoder:        %s\n", h.encoder.c_str());
  std::printf("text encoder:   %s\n", h.text_encoder.empty() ? "(no caption features)" : h.text_encoder.c_str());
  std::printf("views:          %d per image\n", h.views);
  std::printf("dataset:        %s\n", h.dataset.c_str());
  std::printf("records:        %zu\n", reader.size());

  std::map<std::int32_t, std::int64_t> labels;
  std::map<std::string, std::int64_t> shapes;
  std::size_t caption_min = SIZE_MAX, caption_max = 0, caption_total = 0, good = 0, corrupt = 0;
  std::vector<Record> first;
  for (std::size_t i = 0; i < reader.size(); ++i) {
    Record r;
    try {
      r = reader.read(i);
    } catch (const ldm::DataError& e) {  // report every corrupt record, not only the first
      std::fprintf(stderr, "ldm-data: error: %s\n", e.what());
      ++corrupt;
      continue;
    }
    ++good;
    ++labels[r.label];
    ++shapes[shape_text(r.shape)];
    caption_min = std::min(caption_min, r.caption.size());
    caption_max = std::max(caption_max, r.caption.size());
    caption_total += r.caption.size();
    if (static_cast<std::int64_t>(first.size()) < show) first.push_back(std::move(r));
  }

  std::printf("labels:         %zu distinct\n", labels.size());
  for (const auto& [label, n] : labels)
    std::printf("  %-24s %lld\n", label_text(label, h).c_str(), static_cast<long long>(n));
  if (good > 0)
    std::printf("caption chars:  min %zu, mean %.1f, max %zu\n", caption_min, static_cast<double>(caption_total) / good,
                caption_max);
  for (const auto& [shape, n] : shapes)
    std::printf("payload shape:  %s x %lld\n", shape.c_str(), static_cast<long long>(n));
  for (const Record& r : first) print_record(r, h);
  if (corrupt > 0) {
    std::printf("checksums:      %zu of %zu records corrupt\n", corrupt, reader.size());
    return 1;
  }
  std::printf("checksums:      all %zu records verified\n", reader.size());
  return 0;
}

// Progress on stderr: one updating line on a terminal, else a line per shard (for logs).
void print_progress(const char* verb, std::size_t done, std::size_t total, const std::string& shard,
                    std::uint64_t records, std::uint64_t bytes, double seconds) {
  static const bool tty = ::isatty(STDERR_FILENO) != 0;
  const double rate = seconds > 0 ? records / seconds : 0.0;
  const double mb_rate = seconds > 0 ? bytes / seconds / 1e6 : 0.0;
  std::fprintf(stderr, "%sldm-data: %s %zu/%zu shards (%s), %llu records, %.0f records/s, %.1f MB/s%s", tty ? "\r" : "",
               verb, done, total, shard.c_str(), static_cast<unsigned long long>(records), rate, mb_rate,
               tty && done < total ? "\x1b[K" : "\n");
}

int run_verify(const Args& args) {
  if (args.positionals.size() != 1) throw UsageError("verify needs exactly one DIR argument", kVerifyUsage);
  const std::int64_t max_problems = int_option(args, "max-problems", 100, kVerifyUsage);
  if (max_problems < 0) throw UsageError("option '--max-problems' must be >= 0", kVerifyUsage);
  ldm::data::VerifyOptions options;
  options.max_problems = static_cast<std::size_t>(max_problems);
  const auto start = std::chrono::steady_clock::now();
  options.progress = [&](const ldm::data::VerifyProgress& p) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    print_progress("verified", p.shards_done, p.shards_total, p.shard, p.records_done, p.bytes_done, seconds);
  };
  const ldm::data::VerifyReport report = ldm::data::verify_directory(args.positionals[0], options);
  for (const auto& problem : report.problems) std::printf("%s\n", problem.text.c_str());
  if (report.problem_count > report.problems.size())
    std::printf("... and %llu more problems not shown (--max-problems)\n",
                static_cast<unsigned long long>(report.problem_count - report.problems.size()));
  std::printf("%s: %s\n", report.dir.c_str(), ldm::data::verify_summary(report).c_str());
  return report.clean() ? 0 : 1;
}

int run_stats(const Args& args) {
  if (args.positionals.size() != 1) throw UsageError("stats needs exactly one DIR argument", kStatsUsage);
  const auto start = std::chrono::steady_clock::now();
  const ldm::data::DatasetStats stats = ldm::data::compute_stats(
      args.positionals[0],
      [&](const ldm::data::StatsProgress& p) {
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        print_progress("read", p.shards_done, p.shards_total, p.shard, p.records_done, p.bytes_done, seconds);
      },
      [](const std::string& error) { std::fprintf(stderr, "ldm-data: skipped: %s\n", error.c_str()); });
  if (args.flags.count("json")) {
    std::printf("%s\n", ldm::data::stats_json(stats).c_str());
  } else {
    std::fputs(ldm::data::format_stats(stats).c_str(), stdout);
  }
  return 0;
}

double double_option(const Args& args, const std::string& name, double fallback, const char* usage) {
  const auto it = args.options.find(name);
  if (it == args.options.end()) return fallback;
  std::size_t used = 0;
  try {
    const double v = std::stod(it->second, &used);
    if (used == it->second.size()) return v;
  } catch (const std::exception&) {  // not a number: reported below
  }
  throw UsageError("option '--" + name + "' expects a number, got '" + it->second + "'", usage);
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e8) return "?";
  const long long s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  }
  return buf;
}

// The options both importers share; `out` is returned through `dir`.
ldm::data::ImportOptions import_options(const Args& args, const char* usage, std::string& dir) {
  const auto out = args.options.find("out");
  if (out == args.options.end()) throw UsageError("import needs --out DIR", usage);
  dir = out->second;
  ldm::data::ImportOptions o;
  o.crop.size = static_cast<int>(int_option(args, "resolution", 256, usage));
  if (o.crop.size < 1 || o.crop.size > 8192) throw UsageError("option '--resolution' must be in 1..8192", usage);
  const auto crop = args.options.find("crop");
  if (crop != args.options.end()) {
    try {
      o.crop.strategy = ldm::data::parse_crop_strategy(crop->second);
    } catch (const ldm::Error& e) {
      throw UsageError(e.what(), usage);
    }
  }
  o.crop.flip_prob = double_option(args, "flip", 0.0, usage);
  if (!(o.crop.flip_prob >= 0.0 && o.crop.flip_prob <= 1.0))
    throw UsageError("option '--flip' must be in [0, 1]", usage);
  o.views = static_cast<int>(int_option(args, "views", 1, usage));
  if (o.views < 1 || o.views > 1024) throw UsageError("option '--views' must be in 1..1024", usage);
  o.seed = static_cast<std::uint64_t>(int_option(args, "seed", 0, usage));
  o.shard_records = int_option(args, "shard-records", 1024, usage);
  if (o.shard_records < 1) throw UsageError("option '--shard-records' must be >= 1", usage);
  const std::int64_t threads = int_option(args, "threads", 0, usage);
  if (threads < 0 || threads > 1024) throw UsageError("option '--threads' must be in 0..1024", usage);
  o.threads = static_cast<int>(threads);

  if (args.flags.count("buckets")) {
    const int step = static_cast<int>(int_option(args, "bucket-step", ldm::data::kDefaultBucketStep, usage));
    const double aspect = double_option(args, "bucket-max-aspect", ldm::data::kDefaultBucketMaxAspect, usage);
    try {
      o.buckets = ldm::data::make_buckets(o.crop.size, step, aspect);
    } catch (const ldm::Error& e) {
      throw UsageError(e.what(), usage);
    }
  } else if (args.options.count("bucket-step") || args.options.count("bucket-max-aspect")) {
    throw UsageError("--bucket-step / --bucket-max-aspect go with --buckets", usage);
  }

  // Encoders run in a child process, so ldm-data itself never links LibTorch.
  std::vector<std::string> encode_args{"--serve"};
  for (const char* key :
       {"vae", "text-encoder", "tokenizer", "max-tokens", "text-dim", "text-embeddings", "encode-batch"})
    if (auto it = args.options.find(key); it != args.options.end()) {
      encode_args.push_back(std::string("--") + key);
      encode_args.push_back(it->second);
    }
  if (args.options.count("tokenizer") && !args.options.count("text-encoder"))
    throw UsageError("--tokenizer goes with --text-encoder", usage);
  if (args.options.count("text-encoder") && args.options.count("text-embeddings"))
    throw UsageError("caption features come from --text-encoder or --text-embeddings, not both", usage);
  if (encode_args.size() > 1) {
    if (!args.options.count("vae") && !args.options.count("text-encoder") && !args.options.count("text-embeddings"))
      throw UsageError("encoder options need --vae, --text-encoder or --text-embeddings", usage);
    o.encoder = std::make_shared<ldm::data::EncoderProcess>(ldm::data::sibling_program("ldm-encode"), encode_args);
    std::fprintf(stderr, "ldm-data: encoding with %s%s%s\n", o.encoder->identity().c_str(),
                 o.encoder->text_identity().empty() ? "" : " + ", o.encoder->text_identity().c_str());
  }

  // Progress: "images 1200/5000 (24%), 310 images/s, ETA 0:12", at most ~5 times a second.
  static const bool tty = ::isatty(STDERR_FILENO) != 0;
  auto last = std::make_shared<double>(-1.0);
  o.progress = [last](const ldm::data::ImportProgress& p) {
    const bool final = p.done == p.total;
    if (!final && p.seconds - *last < (tty ? 0.2 : 5.0)) return;
    *last = p.seconds;
    const double rate = p.seconds > 0 ? p.done / p.seconds : 0.0;
    const double image_rate = p.seconds > 0 ? p.images_kept / p.seconds : 0.0;
    const double eta = rate > 0 ? (p.total - p.done) / rate : -1.0;
    std::fprintf(stderr,
                 "%sldm-data: %s %llu/%llu (%.0f%%), %llu images kept, %.1f images/s, "
                 "%.1f MB/s, ETA %s%s",
                 tty ? "\r" : "", p.unit, static_cast<unsigned long long>(p.done),
                 static_cast<unsigned long long>(p.total), p.total ? 100.0 * p.done / p.total : 100.0,
                 static_cast<unsigned long long>(p.images_kept), image_rate,
                 p.seconds > 0 ? p.bytes_read / p.seconds / 1e6 : 0.0, format_duration(eta).c_str(),
                 tty && !final ? "\x1b[K" : "\n");
  };
  o.on_skip = [](const std::string& text) {
    std::fprintf(stderr, "%sldm-data: skipped %s\n", tty ? "\r\x1b[K" : "", text.c_str());
  };
  return o;
}

int run_import_imagenet(const Args& args) {
  if (args.positionals.size() != 1)
    throw UsageError("import-imagenet needs exactly one ROOT argument", kImportImageNetUsage);
  std::string dir;
  const ldm::data::ImportOptions o = import_options(args, kImportImageNetUsage, dir);
  ldm::data::ImageNetOptions in;
  if (args.options.count("split")) in.split = args.options.at("split");
  if (in.split != "train" && in.split != "val")
    throw UsageError("option '--split' must be train or val", kImportImageNetUsage);
  if (args.options.count("val-labels")) in.val_labels = args.options.at("val-labels");
  const auto summary = ldm::data::import_imagenet(args.positionals[0], dir, in, o);
  std::fputs(ldm::data::format_import_summary(summary).c_str(), stdout);
  return 0;
}

int run_import_wds(const Args& args) {
  if (args.positionals.size() != 1) throw UsageError("import-wds needs exactly one PATTERN argument", kImportWdsUsage);
  std::string dir;
  const ldm::data::ImportOptions o = import_options(args, kImportWdsUsage, dir);
  const auto summary = ldm::data::import_webdataset(args.positionals[0], dir, o);
  std::fputs(ldm::data::format_import_summary(summary).c_str(), stdout);
  return 0;
}

struct Command {
  const char* name;
  const char* usage;
  std::vector<std::string> options;
  std::vector<std::string> flags;
  int (*run)(const Args&);
};

}  // namespace

int main(int argc, char** argv) {
  const std::vector<Command> commands = {
      {"synth", kSynthUsage, {"out", "records", "classes", "resolution", "seed", "shard-records"}, {}, run_synth},
      {"inspect", kInspectUsage, {"records"}, {}, run_inspect},
      {"verify", kVerifyUsage, {"max-problems"}, {}, run_verify},
      {"stats", kStatsUsage, {}, {"json"}, run_stats},
      {"import-imagenet",
       kImportImageNetUsage,
       {"out", "split", "resolution", "crop", "flip", "views", "seed", "shard-records", "threads", "val-labels", "vae",
        "text-encoder", "tokenizer", "max-tokens", "text-dim", "text-embeddings", "encode-batch", "bucket-step",
        "bucket-max-aspect"},
       {"buckets"},
       run_import_imagenet},
      {"import-wds",
       kImportWdsUsage,
       {"out", "resolution", "crop", "flip", "views", "seed", "threads", "vae", "text-encoder", "tokenizer",
        "max-tokens", "text-dim", "text-embeddings", "encode-batch", "bucket-step", "bucket-max-aspect"},
       {"buckets"},
       run_import_wds},
  };
  std::vector<std::string> names;  // for "did you mean"
  for (const Command& c : commands) names.push_back(c.name);
  try {
    const std::string name = argc > 1 ? argv[1] : "";
    if (name == "--help" || name == "-h" || name == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    for (const Command& c : commands) {
      if (name != c.name) continue;
      const Args args = parse_args(argc, argv, c.options, c.flags, c.usage);
      if (args.help) {
        std::fputs(c.usage, stdout);
        return 0;
      }
      return c.run(args);
    }
    throw UsageError(
        name.empty() ? "missing command" : "unknown command '" + name + "'" + ldm::did_you_mean(name, names), kUsage);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "ldm-data: %s\n\n%s", e.what(), e.usage);
    return 2;
  } catch (const std::exception& e) {  // ldm::Error and the rare std one (bad_alloc, filesystem)
    std::fprintf(stderr, "ldm-data: error: %s\n", e.what());
    return 1;
  }
}
