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

#include <nlohmann/json.hpp>

#include "datasets/data_preview.h"
#include "datasets/format/dataset_tools.h"
#include "datasets/format/shard.h"
#include "datasets/import/encoder_process.h"
#include "datasets/import/importers.h"
#include "datasets/import/synthetic.h"
#include "shared/core/cli.h"
#include "shared/core/error.h"
#include "shared/core/safe_file.h"
#include "shared/core/text.h"

namespace {

using ldm::cli::Args;
using ldm::cli::UsageError;
using ldm::data::Record;

int run_synth(const Args& args) {
  const std::string dir = args.text("out");
  ldm::data::SyntheticParams p;
  p.records = args.integer("records", p.records);
  p.classes = args.integer("classes", p.classes);
  p.resolution = args.integer("resolution", p.resolution);
  p.seed = args.integer("seed", p.seed);
  p.shard_records = args.integer("shard-records", p.shard_records);

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
  const std::int64_t show = args.integer("records", 3);
  const ldm::data::ShardReader reader(args.positional[0]);
  const auto& h = reader.header();
  const bool json = args.has("json");
  if (!json) {
    std::printf("shard:          %s\n", reader.path().c_str());
    std::printf("format version: %u\n", h.format_version);
    std::printf("kind:           %s\n", ldm::data::to_string(h.kind));
    std::printf("encoder:        %s\n", h.encoder.c_str());
    std::printf("text encoder:   %s\n", h.text_encoder.empty() ? "(no caption features)" : h.text_encoder.c_str());
    std::printf("views:          %d per image\n", h.views);
    std::printf("dataset:        %s\n", h.dataset.c_str());
    std::printf("records:        %zu\n", reader.size());
  }

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

  if (json) {
    nlohmann::json label_counts = nlohmann::json::object(), shape_counts = nlohmann::json::object();
    for (const auto& [label, n] : labels) label_counts[label_text(label, h)] = n;
    for (const auto& [shape, n] : shapes) shape_counts[shape] = n;
    nlohmann::json records = nlohmann::json::array();
    for (const Record& r : first)
      records.push_back({{"id", r.id},
                         {"label", r.label},
                         {"caption", r.caption},
                         {"shape", r.shape},
                         {"view", r.view},
                         {"control",
                          {{"orig_h", r.control.orig_h},
                           {"orig_w", r.control.orig_w},
                           {"crop_top", r.control.crop_top},
                           {"crop_left", r.control.crop_left},
                           {"crop_h", r.control.crop_h},
                           {"crop_w", r.control.crop_w},
                           {"flip", r.control.flip}}}});
    nlohmann::json out = {
        {"shard", reader.path()}, {"format_version", h.format_version}, {"kind", ldm::data::to_string(h.kind)},
        {"encoder", h.encoder},   {"text_encoder", h.text_encoder},     {"views", h.views},
        {"dataset", h.dataset},   {"records", reader.size()},           {"corrupt_records", corrupt},
        {"labels", label_counts}, {"payload_shapes", shape_counts},     {"first", records}};
    if (good > 0)
      out["caption_chars"] = {
          {"min", caption_min}, {"mean", static_cast<double>(caption_total) / double(good)}, {"max", caption_max}};
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return corrupt > 0 ? 1 : 0;
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

int run_preview(const Args& args) {
  const std::string& where = args.positional[0];
  const std::vector<std::string> shards =
      std::filesystem::is_directory(where) ? ldm::data::list_shards(where) : std::vector<std::string>{where};
  if (shards.empty()) throw ldm::Error("preview: no *.ldms shards in " + where);
  const std::int64_t want = args.integer("records", 16), skip = args.integer("start", 0);
  std::vector<ldm::data::PreviewTile> tiles;
  std::int64_t seen = 0;
  for (const std::string& shard : shards) {
    const ldm::data::ShardReader reader(shard);
    for (std::size_t i = 0; i < reader.size() && std::int64_t(tiles.size()) < want; ++i)
      if (seen++ >= skip) {
        Record r = reader.read(i);
        const std::string label = label_text(r.label, reader.header());
        tiles.push_back({std::move(r), label});
      }
    if (std::int64_t(tiles.size()) >= want) break;
  }
  if (tiles.empty())
    throw ldm::Error("preview: " + where + " has no record at or after number " + std::to_string(skip));
  ldm::data::PreviewLayout layout;
  layout.columns = static_cast<int>(args.integer("columns", 4));
  layout.cell = static_cast<int>(args.integer("cell", 128));
  const std::string out = args.text("out", "preview.png");
  ldm::data::write_preview(out, tiles, layout);
  std::printf("wrote %s: %zu records from %s\n", out.c_str(), tiles.size(), where.c_str());
  return 0;
}

int run_verify(const Args& args) {
  const std::int64_t max_problems = args.integer("max-problems", 100);
  ldm::data::VerifyOptions options;
  options.max_problems = static_cast<std::size_t>(max_problems);
  const auto start = std::chrono::steady_clock::now();
  options.progress = [&](const ldm::data::VerifyProgress& p) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    print_progress("verified", p.shards_done, p.shards_total, p.shard, p.records_done, p.bytes_done, seconds);
  };
  const ldm::data::VerifyReport report = ldm::data::verify_directory(args.positional[0], options);
  if (args.has("json")) {
    nlohmann::json problems = nlohmann::json::array();
    for (const auto& p : report.problems) {
      nlohmann::json item = {{"shard", p.shard}, {"record", p.record}, {"text", p.text}};
      item["id"] = p.id ? nlohmann::json(*p.id) : nlohmann::json(nullptr);
      problems.push_back(std::move(item));
    }
    std::printf("%s\n", nlohmann::json{{"dir", report.dir},
                                       {"clean", report.clean()},
                                       {"shards", report.shards},
                                       {"records", report.records},
                                       {"bytes", report.bytes},
                                       {"unreadable_shards", report.unreadable_shards},
                                       {"corrupt_records", report.corrupt_records},
                                       {"duplicate_ids", report.duplicate_ids},
                                       {"disagreements", report.disagreements},
                                       {"problem_count", report.problem_count},
                                       {"problems", problems}}
                            .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)  // captions: any bytes
                            .c_str());
    return report.clean() ? 0 : 1;
  }
  for (const auto& problem : report.problems) std::printf("%s\n", problem.text.c_str());
  if (report.problem_count > report.problems.size())
    std::printf("... and %llu more problems not shown (--max-problems)\n",
                static_cast<unsigned long long>(report.problem_count - report.problems.size()));
  std::printf("%s: %s\n", report.dir.c_str(), ldm::data::verify_summary(report).c_str());
  return report.clean() ? 0 : 1;
}

int run_stats(const Args& args) {
  const auto start = std::chrono::steady_clock::now();
  const ldm::data::DatasetStats stats = ldm::data::compute_stats(
      args.positional[0],
      [&](const ldm::data::StatsProgress& p) {
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        print_progress("read", p.shards_done, p.shards_total, p.shard, p.records_done, p.bytes_done, seconds);
      },
      [](const std::string& error) { std::fprintf(stderr, "ldm-data: skipped: %s\n", error.c_str()); });
  if (args.has("json")) {
    std::printf("%s\n", ldm::data::stats_json(stats).c_str());
  } else {
    std::fputs(ldm::data::format_stats(stats).c_str(), stdout);
  }
  return 0;
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
ldm::data::ImportOptions import_options(const Args& args) {
  ldm::data::ImportOptions o;
  o.crop.size = static_cast<int>(args.integer("resolution", 256));
  if (args.has("crop")) {
    try {
      o.crop.strategy = ldm::data::parse_crop_strategy(args.text("crop"));
    } catch (const ldm::Error& e) {
      throw UsageError(e.what());
    }
  }
  o.crop.flip_prob = args.number("flip", 0.0);
  o.views = static_cast<int>(args.integer("views", 1));
  o.seed = static_cast<std::uint64_t>(args.integer("seed", 0));
  o.shard_records = args.integer("shard-records", 1024);
  o.threads = static_cast<int>(args.integer("threads", 0));

  if (args.has("buckets")) {
    const int step = static_cast<int>(args.integer("bucket-step", ldm::data::kDefaultBucketStep));
    const double aspect = args.number("bucket-max-aspect", ldm::data::kDefaultBucketMaxAspect);
    try {
      o.buckets = ldm::data::make_buckets(o.crop.size, step, aspect);
    } catch (const ldm::Error& e) {
      throw UsageError(e.what());
    }
  } else if (args.has("bucket-step") || args.has("bucket-max-aspect")) {
    throw UsageError("--bucket-step / --bucket-max-aspect go with --buckets");
  }

  // Encoders run in a child process, so ldm-data itself never links LibTorch.
  std::vector<std::string> encode_args{"--serve"};
  for (const ldm::cli::Option& o : ldm::data::encoder_options())
    if (args.has(o.name)) {
      encode_args.push_back("--" + o.name);
      encode_args.push_back(args.text(o.name));
    }
  if (args.has("tokenizer") && !args.has("text-encoder")) throw UsageError("--tokenizer goes with --text-encoder");
  if (args.has("text-encoder") && args.has("text-embeddings"))
    throw UsageError("caption features come from --text-encoder or --text-embeddings, not both");
  if (encode_args.size() > 1) {
    if (!args.has("vae") && !args.has("text-encoder") && !args.has("text-embeddings"))
      throw UsageError("encoder options need --vae, --text-encoder or --text-embeddings");
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

// Prints the summary; an import that kept no image at all fails (exit 1): nothing to train on,
// and a script should not go on as if there were.
int finish_import(const ldm::data::ImportSummary& summary) {
  std::fputs(ldm::data::format_import_summary(summary).c_str(), stdout);
  if (summary.images_kept > 0) return 0;
  std::fprintf(stderr,
               "ldm-data: error: no image was kept from %llu input(s) (%llu skipped, reasons above); %s holds "
               "no records\n",
               static_cast<unsigned long long>(summary.inputs),
               static_cast<unsigned long long>(summary.skipped_total()), summary.out_dir.c_str());
  return 1;
}

int run_import_imagenet(const Args& args) {
  const ldm::data::ImportOptions o = import_options(args);
  ldm::data::ImageNetOptions in;
  in.split = args.text("split", in.split);
  in.val_labels = args.text("val-labels", in.val_labels);
  return finish_import(ldm::data::import_imagenet(args.positional[0], args.text("out"), in, o));
}

int run_import_wds(const Args& args) {
  const ldm::data::ImportOptions o = import_options(args);
  return finish_import(ldm::data::import_webdataset(args.positional[0], args.text("out"), o));
}

// Options both importers take.
std::vector<ldm::cli::Option> import_option_list() {
  using namespace ldm::cli;
  std::vector<Option> options = {
      text("out", "DIR", "output directory").required(),
      integer("resolution", "R", "output side in pixels (default 256)", 1, 8192),
      text("crop", "center|random|random_resized", "crop strategy (default center)"),
      number("flip", "P", "horizontal flip probability (default 0)", 0, 1),
      integer("views", "K", "augmented views per image (default 1)", 1, 1024),
      integer("seed", "S", "augmentation seed (default 0)", 0),
      integer("threads", "T", "decoding threads (default: hardware concurrency)", 0, 1024),
      flag("buckets",
           "aspect-ratio buckets: crop each image to the bucket nearest its aspect (sides multiples of\n"
           "--bucket-step, area <= R^2, aspect <= --bucket-max-aspect; defaults 32 and 2, our choice,\n"
           "not the paper's)"),
      integer("bucket-step", "S", "bucket side multiple (default 32)", 1, 8192),
      number("bucket-max-aspect", "A", "largest bucket aspect ratio (default 2)", 1, 100)};
  for (const Option& o : ldm::data::encoder_options()) options.push_back(o);
  return options;
}

ldm::cli::Program program() {
  using namespace ldm::cli;
  std::vector<Option> imagenet = import_option_list();
  imagenet.push_back(choice("split", {"train", "val"}, "which split (default train)"));
  imagenet.push_back(integer("shard-records", "N", "input images per shard (default 1024)", 1));
  imagenet.push_back(text("val-labels", "FILE", "labels of a flat ROOT/val"));
  const std::string encoding =
      "Encoding (--vae, --text-encoder, --text-embeddings) runs the LibTorch child `ldm-encode --serve`;\n"
      "shards then hold latents and/or caption features, and their headers name the encoders.";
  return {"ldm-data",
          "Makes and checks sharded datasets: synthetic data, ImageNet folders and WebDataset tars, with\n"
          "checksums, an index and the control metadata of every crop.",
          {{"synth",
            {},
            "Render the synthetic class-conditional dataset into shards.",
            {text("out", "DIR", "output directory").required(),
             integer("records", "N", "number of records (default 1024)", 1, 1e8),
             integer("classes", "C", "number of classes, at most 80 (default 10)", 1, 80),
             integer("resolution", "R", "image side in pixels (default 32)", 8, 1024),
             integer("seed", "S", "random seed (default 0)", 0),
             integer("shard-records", "K", "records per shard file (default 256)", 1, 1e7)},
            run_synth,
            "Renders coloured shapes (class = shape + colour) with captions and crop/flip metadata into\n"
            "DIR/synth-NNNNN.ldms plus DIR/dataset.json. An existing DIR with the same parameters is\n"
            "reused; one with different parameters is an error."},
           {"inspect",
            {"SHARD"},
            "Print a shard's header, statistics and first records; verify every checksum.",
            {integer("records", "K", "how many records to print (default 3)", 0),
             flag("json", "print JSON instead of text")},
            run_inspect,
            "Prints the header, record count, label histogram, caption lengths and payload shapes, then the\n"
            "first K records. Reads every record and verifies its checksum: exits 1 if any is corrupt."},
           {"preview",
            {"DIR|SHARD"},
            "Write a PNG grid of records: each image with its id, label, caption and control metadata.",
            {text("out", "FILE", "the PNG to write (default preview.png)"),
             integer("records", "N", "how many records (default 16)", 1, 4096),
             integer("start", "K", "skip the first K records (default 0)", 0),
             integer("columns", "C", "tiles per row (default 4)", 1, 64),
             integer("cell", "PX", "image side in a tile, pixels (default 128)", 8, 2048)},
            run_preview,
            "Reads records in shard order (DIR/*.ldms sorted by name, or one shard) and draws each as a\n"
            "tile: the image resized to the cell (nearest neighbour), or for latent shards the first three\n"
            "channels scaled to 0..255 each, over its id, label (with the class name of synthetic data),\n"
            "caption (wrapped) and control metadata (original size, crop, flip)."},
           {"verify",
            {"DIR"},
            "Check every shard of a directory: checksums, index, footer, unique ids, headers.",
            {integer("max-problems", "N", "how many problems to print (default 100; all are counted)", 0),
             flag("json", "print the report as JSON")},
            run_verify,
            "Checks every DIR/*.ldms shard: header, footer and index, every record's length and checksum,\n"
            "that record ids are unique across the directory, and that every shard agrees with the first\n"
            "on payload kind, encoder and channel count. Goes on past each problem and names the shard,\n"
            "record number and id of each. Progress goes to stderr. Exits 0 only when nothing is wrong."},
           {"stats",
            {"DIR"},
            "Counts per class and shape, caption lengths, control metadata, channel mean/std.",
            {flag("json", "print JSON instead of a table")},
            run_stats,
            "Streams every record of DIR/*.ldms and prints: records per class and per payload shape,\n"
            "caption length in words and characters, the range of original and crop sizes and the flip\n"
            "fraction, and the per-channel mean and std of the payload (pixels in [0,1], or latents with\n"
            "a suggested scale factor = 1/std over all latent values, as LDM's scale_factor). Records\n"
            "that fail their checksum are skipped and counted."},
           {"import-imagenet",
            {"ROOT"},
            "Import an ImageNet folder (train/<wnid>/*.JPEG, val) into image or latent shards.",
            imagenet,
            run_import_imagenet,
            "Decodes ROOT/train/<wnid>/*.JPEG (or ROOT/val) in parallel, crops each image and writes\n"
            "DIR/imagenet-<split>-NNNNN.ldms plus DIR/dataset.json. Class index = position of the wnid in\n"
            "the sorted list of ROOT/train's folder names (torchvision ImageFolder; the standard\n"
            "0..999 order for ILSVRC-2012). Validation: ROOT/val/<wnid>/* folders, or a flat ROOT/val with\n"
            "--val-labels FILE holding either 'ILSVRC2012_val_00000001.JPEG n01751748' lines (file name\n"
            "and wnid or class index) or one wnid / class index per line in sorted file-name order.\n"
            "Unreadable or truncated images are skipped, counted and named. Shard k always holds images\n"
            "[k*N, (k+1)*N) of the sorted list: a rerun keeps complete shards and redoes the rest.\n" +
                encoding},
           {"import-wds",
            {"PATTERN"},
            "Import WebDataset tars (key.jpg|png|webp + key.txt [+ key.json]) into shards.",
            import_option_list(),
            run_import_wds,
            "Reads WebDataset tars ('PATTERN-{00000..00099}.tar': brace ranges keep their zero padding;\n"
            "quote the pattern), groups members by key (path up to the first '.' of the file name): an\n"
            "image (.jpg .jpeg .png .webp), a caption (.txt) and an optional .json whose\n"
            "original_width/original_height (or width/height) become the record's original size. Samples\n"
            "without an image or caption are skipped and counted. Tar k becomes DIR/wds-NNNNN.ldms (tars\n"
            "run in parallel); a rerun keeps complete shards. Labels are -1.\n" +
                encoding}}};
}

}  // namespace

int main(int argc, char** argv) { return ldm::cli::run(program(), argc, argv); }
