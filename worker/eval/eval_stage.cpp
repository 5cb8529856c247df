#include "worker/eval/eval_stage.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <cstdio>
#include <filesystem>

#include <unistd.h>

#include "datasets/images/image_decode.h"
#include "datasets/tensor/loader.h"
#include "shared/core/progress.h"
#include "worker/hardware.h"
#include "shared/core/checkpoint_dir.h"
#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/log.h"
#include "shared/core/safe_file.h"
#include "shared/core/sha256.h"
#include "shared/core/text.h"
#include "worker/eval/adherence.h"
#include "worker/eval/clip_score.h"
#include "worker/eval/disentanglement.h"
#include "worker/eval/fid_stats.h"
#include "worker/eval/generate.h"
#include "worker/eval/image_folder.h"
#include "worker/train/fault.h"
#include "worker/train/reporter.h"

namespace ldm::eval {
namespace {

namespace fs = std::filesystem;

// The sampler, steps and guidance of the stage: the recipe's, each overridable in [stage.eval].
GuidedSampling stage_sampling(const worker::SamplingModel& m, const EvalSpec& ev) {
  GuidedSampling s = recipe_sampling(m);
  if (!ev.sampler.empty()) s.sampler.method = parse_choice<Sampler>(ev.sampler, "eval.sampler");
  if (ev.steps > 0) s.sampler.steps = ev.steps;
  if (ev.cfg >= 0) s.cfg = ev.cfg;
  if (ev.cfg_control >= 0) s.cfg_control = ev.cfg_control;
  return s;
}

// The samples' images, in index order (rank 0 reads what every rank wrote).
std::vector<data::RgbImage> read_samples(const std::string& dir, int64_t n) {
  std::vector<data::RgbImage> images;
  for (int64_t i = 0; i < n; ++i) images.push_back(data::decode_image_file(dir + "/" + sample_file_name(i)));
  return images;
}

// An [stage.eval] path as the coordinator resolved it against the experiment file (init.paths).
std::string eval_path(const worker::StageContext& ctx, const std::string& key, const std::string& written) {
  const nlohmann::json paths = ctx.init.value("paths", nlohmann::json::object());
  return paths.contains(key) ? paths[key].get<std::string>() : written;
}

// The parent's training data as its checkpoint manifest names it.
std::string training_data_dir(const std::string& bundle) {
  const std::string source = bundle + "/manifest.json";
  const nlohmann::json manifest = parse_bundle_manifest(read_file(source), source);
  if (!manifest.contains("dataset") || !manifest["dataset"].contains("dir"))
    throw DataError(source + ": names no training data (dataset.dir)");
  return manifest["dataset"]["dir"].get<std::string>();
}

// The FID reference of the stage (once for all its checkpoints): eval.reference, or the parent's
// training data as its checkpoint manifest names it (which must hold images, not latents).
struct Reference {
  std::string path;
  FeatureStats stats;
  bool cached = false;
};
Reference fid_reference(const worker::StageContext& ctx, const EvalSpec& ev, const FeatureExtractor& extractor,
                        const std::string& first_bundle) {
  Reference r;
  r.path = eval_path(ctx, "reference", ev.reference);
  if (r.path.empty()) {
    try {
      r.path = training_data_dir(first_bundle);
    } catch (const DataError& e) {
      throw DataError(std::string(e.what()) + " to take the FID reference from; set eval.reference");
    }
    if (collection_kind(r.path) == CollectionKind::ImageShards &&
        data::ShardDataset(r.path).header().kind != data::PayloadKind::ImageU8)
      throw DataError("eval.reference is empty and the parent trained on latent shards (" + r.path +
                      "): set eval.reference to image statistics (.npz), an image folder or image shards");
  }
  r.stats = reference_stats(r.path, extractor, ctx.data_dir + "/fid-stats", &r.cached);
  return r;
}

bool wants(const EvalSpec& ev, const char* metric) {
  return std::count(ev.metrics.begin(), ev.metrics.end(), metric) > 0;
}

// What rank 0 sets up once per stage and every checkpoint's measurement reads.
struct Instruments {
  std::unique_ptr<FeatureExtractor> extractor;
  std::optional<Reference> reference;
  std::optional<CaptionClassifier> classifier;  // caption_adherence
  std::string data_dir;                         // the parent's training data
  // control_adherence: the data's sharpness curve over eval.sizes, and what it was taken from.
  std::vector<double> data_curve;
  std::string control_reference;
};

Instruments set_up_instruments(const worker::StageContext& ctx, const EvalSpec& ev, const std::string& first_bundle) {
  Instruments in;
  const std::string features = eval_path(ctx, "features", ev.features);
  // On the experiment's device ([hardware]), as the sampling is.
  const std::string device =
      worker::resolve_hardware(ldm::stage_view(ctx.spec, static_cast<std::size_t>(ctx.stage_index)).hardware)
          .device.str();
  in.extractor = make_feature_extractor(features == "builtin" ? "" : features, 50, device);
  if (wants(ev, "fid")) in.reference = fid_reference(ctx, ev, *in.extractor, first_bundle);
  if (wants(ev, "caption_adherence") || wants(ev, "control_adherence")) in.data_dir = training_data_dir(first_bundle);
  if (wants(ev, "caption_adherence")) {
    in.classifier =
        CaptionClassifier::train_or_load(in.data_dir, CaptionClassifierOptions{}, ctx.data_dir + "/classifiers");
  }
  if (wants(ev, "control_adherence")) {
    try {
      in.data_curve = data_sharpness_curve(in.data_dir, ev.sizes);
      in.control_reference = "the training data's sharpness by crop side (" + in.data_dir + ")";
    } catch (const DataError& e) {  // latent shards: no images to measure; sharper with size is the stand-in
      for (int64_t size : ev.sizes) in.data_curve.push_back(std::log(double(size)));
      in.control_reference = "log size (the training data has no images: " + std::string(e.what()) + ")";
      log::warn("control_adherence: against " + in.control_reference);
    }
  }
  return in;
}

// The size-condition metrics of one checkpoint: disentanglement and control adherence from one set
// of images per size. A recipe without controls cannot see the size condition: every size gives
// the same image, so both are 0 by construction and nothing is sampled.
void measure_size_condition(const worker::StageContext& ctx, const EvalSpec& ev, const worker::SamplingModel& m,
                            const Instruments& in, const std::vector<std::string>& captions, nlohmann::json& metrics) {
  if (wants(ev, "control_adherence")) {
    metrics["control_reference"] = in.control_reference;
    metrics["control_reference_curve"] = in.data_curve;
  }
  if (!m.conditions->uses_controls()) {
    if (wants(ev, "disentanglement")) metrics["disentanglement"] = 0.0;
    if (wants(ev, "control_adherence")) metrics["control_adherence"] = metrics["control_gain"] = 0.0;
    metrics["size_condition_note"] = "no control conditioning: the size condition cannot act (0 by construction)";
    return;
  }
  DisentanglementOptions o;
  o.sizes = ev.sizes;
  o.draws = ev.draws;
  o.seed = static_cast<uint64_t>(ev.seed);
  o.captions = captions;
  o.sampling = stage_sampling(m, ev);
  o.batch = ev.batch;
  // LPIPS when given, else the features network's distance (ldm-worker disentanglement's default).
  const FeatureExtractor* fx = in.extractor.get();
  const ImageDistance distance =
      ev.lpips.empty() ? feature_distance("features:" + fx->identity(),
                                          [fx](const at::Tensor& images01) { return fx->features(images01); })
                       : lpips_distance(eval_path(ctx, "lpips", ev.lpips));
  const DisentanglementResult r = measure_disentanglement(m, o, distance);
  if (wants(ev, "disentanglement")) {
    metrics["disentanglement"] = r.all_pairs;
    metrics["disentanglement_distance"] = r.distance;
  }
  if (wants(ev, "control_adherence")) {
    const ControlAdherence c = control_adherence(in.data_curve, r.per_draw_energy);
    metrics["control_adherence"] = c.correlation;
    metrics["control_gain"] = c.gain;
    metrics["control_energy_by_size"] = r.per_draw_energy;
  }
}

// Rank 0: every metric of `ev` for the samples of one checkpoint.
nlohmann::json measure(const worker::StageContext& ctx, const EvalSpec& ev, const worker::SamplingModel& m,
                       const Instruments& in, const std::string& out, const std::vector<std::string>& captions) {
  nlohmann::json metrics = nlohmann::json::object();
  bool size_condition_done = false;
  for (const std::string& metric : ev.metrics) {
    note_progress("computing evaluation metrics");
    if (metric == "fid") {
      const FeatureStats mine = folder_feature_stats(out + "/samples", *in.extractor);
      metrics["fid"] = frechet_distance(mine, in.reference->stats).fid;
      metrics["fid_reference"] = in.reference->path;
      metrics["fid_reference_cached"] = in.reference->cached;
      metrics["fid_features"] = in.extractor->identity();
    } else if (metric == "clip_score") {
      const ClipModel clip(eval_path(ctx, "clip_image", ev.clip_image), eval_path(ctx, "clip_text", ev.clip_text),
                           eval_path(ctx, "clip_bpe", ev.clip_bpe));
      std::vector<std::string> per_sample;
      for (int64_t i = 0; i < ev.samples; ++i)
        per_sample.push_back(captions[static_cast<std::size_t>(i) % captions.size()]);
      metrics["clip_score"] = clip.score(read_samples(out + "/samples", ev.samples), per_sample).score;
    } else if (metric == "caption_adherence") {
      const CaptionAdherence a =
          caption_adherence(*in.classifier, read_samples(out + "/samples", ev.samples), captions);
      const AttributeAccuracy& ceiling = in.classifier->holdout_accuracy();
      metrics["caption_adherence"] = a.score;
      metrics["caption_adherence_colour"] = a.attributes.colour;
      metrics["caption_adherence_shape"] = a.attributes.shape;
      metrics["caption_adherence_side"] = a.attributes.side;
      metrics["caption_classifier_accuracy"] = ceiling.mean();
      metrics["caption_classifier"] = {
          {"colour", ceiling.colour}, {"shape", ceiling.shape}, {"side", ceiling.side}, {"data", in.data_dir}};
    } else if ((metric == "disentanglement" || metric == "control_adherence") && !size_condition_done) {
      measure_size_condition(ctx, ev, m, in, captions, metrics);
      size_condition_done = true;
    }
  }
  return metrics;
}

}  // namespace

std::string collection_content_hash(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && !name.empty() && name[0] != '.') names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  std::string digest;
  for (const std::string& name : names) digest += name + ":" + sha256_file_hex(dir + "/" + name) + "\n";
  return hex64(fnv1a64(digest));
}

FeatureStats reference_stats(const std::string& reference, const FeatureExtractor& extractor,
                             const std::string& cache_dir, bool* cached) {
  if (cached) *cached = false;
  if (ends_with(reference, ".npz")) {
    const std::string network = read_stats_extractor(reference);
    if (!network.empty() && network != extractor.identity())
      throw DataError(reference + ": computed with feature network '" + network + "', the stage uses '" +
                      extractor.identity() + "' (FIDs across networks are meaningless)");
    return read_fid_stats(reference);
  }
  const std::string key = collection_content_hash(reference) + "-" + hex64(fnv1a64(extractor.identity()));
  const std::string path = cache_dir + "/" + key + ".npz";
  if (path_exists(path)) {
    if (cached) *cached = true;
    log::info("FID reference statistics of " + reference + ": cached in " + path);
    return read_fid_stats(path);
  }
  log::info("FID reference statistics of " + reference + ": computing (cached as " + path + ")");
  const CollectionStats stats = collection_feature_stats(reference, extractor);
  make_dirs(cache_dir);
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  write_stats_file(tmp, stats.stats, extractor.identity());
  fs::rename(tmp, path);  // whole files only: a concurrent stage reads the old or the new one
  return stats.stats;
}

nlohmann::json run_eval_stage(const worker::StageContext& ctx, worker::Communicator& comm, worker::Reporter* reporter) {
  const StageSpec& stage = ctx.spec.stages.at(static_cast<std::size_t>(ctx.stage_index));
  const EvalSpec& ev = stage.eval;
  at::set_num_threads(static_cast<int>(stage.threads_per_rank));
  if (!ctx.init.contains("bundles")) throw Error("evaluation stage '" + stage.name + "': no checkpoints to evaluate");
  const std::string caption_file = eval_path(ctx, "captions", ev.captions);
  const std::vector<std::string> captions =
      caption_file.empty() ? std::vector<std::string>{} : read_caption_file(caption_file);
  // Rank 0 measures: its feature network, the FID reference and the classifier are set up once,
  // before any sampling.
  Instruments instruments;
  if (comm.rank() == 0)
    instruments = set_up_instruments(ctx, ev, ctx.init["bundles"].at(0).at("bundle").get<std::string>());
  comm.barrier();
  nlohmann::json results = nlohmann::json::array();
  for (const nlohmann::json& b : ctx.init["bundles"]) {
    const int64_t step = b.at("step").get<int64_t>();
    const std::string bundle = b.at("bundle").get<std::string>();
    const std::string sha = sha256_file_hex(bundle + "/manifest.json");
    if (sha != b.value("manifest_sha256", sha))
      throw DataError(bundle + "/manifest.json: SHA-256 " + sha + " is not the one recorded for this stage");
    worker::set_current_step(step);
    const worker::SamplingModel m = worker::load_sampling_model(bundle);
    GenerateOptions o;
    o.n = ev.samples;
    o.out_dir = ctx.run_dir + "/" + step_dir_name(step);
    o.seed = static_cast<uint64_t>(ev.seed);
    o.sampling = stage_sampling(m, ev);
    o.captions = captions;
    if (!ev.controls.empty())
      o.controls =
          worker::parse_control_meta(ev.controls, m.spec.stages.at(static_cast<std::size_t>(m.stage_index)).resolution);
    o.batch = ev.batch;
    o.source = bundle;
    if (comm.rank() == 0)
      log::info("evaluating " + bundle + " (step " + std::to_string(step) + "): " + std::to_string(ev.samples) +
                " samples");
    if (comm.rank() == 0) fs::remove_all(o.out_dir);  // no files of an earlier attempt among the samples
    comm.barrier();
    const GenerateResult g = generate_for_eval(m, o, comm);
    nlohmann::json result;
    if (comm.rank() == 0) {
      const nlohmann::json metrics = measure(ctx, ev, m, instruments, o.out_dir, captions);
      result = {{"step", step},
                {"bundle", bundle},
                {"samples", o.out_dir + "/samples"},
                {"grid", g.grid},
                {"metrics", metrics}};
      write_file_atomic(o.out_dir + "/metrics.json", result.dump(2) + "\n");
      for (const auto& [name, value] : metrics.items())  // non-finite values stay in metrics.json only
        if (value.is_number() && std::isfinite(value.get<double>()) && reporter)
          reporter->add_point(name, step, value.get<double>());
      if (reporter) reporter->pump(step, true);
      log::info("step " + std::to_string(step) + ": " + metrics.dump());
      results.push_back(result);
    }
    comm.barrier();
  }
  return results;
}

}  // namespace ldm::eval
