// Typed choices: every enumerated setting of a recipe is an enum with one name table here. The
// spec's JSON codec and TOML reader and writer (`ldm-coord show`), validation, error suggestions
// and every command line (shared/core/cli.h) read and write the names through these tables, so a
// name is spelt in exactly one place.
//
// A table lists the names in the order `show`, `--help` and error messages print them.
#pragma once

#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "shared/core/error.h"
#include "shared/core/text.h"

namespace ldm {

enum class Sampler { Ddpm, Ddim, Euler, Heun, DpmPP2M };
enum class Spacing { Uniform, Leading, Trailing, Quadratic };
enum class ControlMode { None, Sdxl, Proposed };
enum class TextPadding { Zero, Replicate, NoisyReplicate };
enum class ProcessKind { VpLinear, VpScaledLinear, VpCosine, Flow };
enum class Objective { Eps, V, Flow };
enum class TimeSampling { Uniform, LogitNormal };
enum class GuidanceSchedule { Constant, PowerCosine };
enum class OptimizerKind { AdamW, Adan };
enum class PosEmbedResampling { Extrapolate, Interpolate, RectifiedGrid };
enum class GridConvention { Center, Corners, Origin };

// Choices<E>::table: {value, name} for every value of E. `what` names the setting in messages.
template <class E>
struct Choices;

template <>
struct Choices<Sampler> {
  static constexpr const char* what = "sampler";
  static constexpr std::pair<Sampler, const char*> table[] = {{Sampler::Ddpm, "ddpm"},
                                                              {Sampler::Ddim, "ddim"},
                                                              {Sampler::Euler, "euler"},
                                                              {Sampler::Heun, "heun"},
                                                              {Sampler::DpmPP2M, "dpm++2m"}};
};
template <>
struct Choices<Spacing> {
  static constexpr const char* what = "timestep spacing";
  static constexpr std::pair<Spacing, const char*> table[] = {{Spacing::Uniform, "uniform"},
                                                              {Spacing::Leading, "leading"},
                                                              {Spacing::Trailing, "trailing"},
                                                              {Spacing::Quadratic, "quadratic"}};
};
template <>
struct Choices<ControlMode> {
  static constexpr const char* what = "control mode";
  static constexpr std::pair<ControlMode, const char*> table[] = {
      {ControlMode::None, "none"}, {ControlMode::Sdxl, "sdxl"}, {ControlMode::Proposed, "proposed"}};
};
template <>
struct Choices<TextPadding> {
  static constexpr const char* what = "text padding";
  static constexpr std::pair<TextPadding, const char*> table[] = {{TextPadding::Zero, "zero"},
                                                                  {TextPadding::Replicate, "replicate"},
                                                                  {TextPadding::NoisyReplicate, "noisy_replicate"}};
};
template <>
struct Choices<ProcessKind> {
  static constexpr const char* what = "noise process";
  static constexpr std::pair<ProcessKind, const char*> table[] = {{ProcessKind::VpLinear, "vp-linear"},
                                                                  {ProcessKind::VpScaledLinear, "vp-scaled-linear"},
                                                                  {ProcessKind::VpCosine, "vp-cosine"},
                                                                  {ProcessKind::Flow, "flow"}};
};
template <>
struct Choices<Objective> {
  static constexpr const char* what = "objective";
  static constexpr std::pair<Objective, const char*> table[] = {
      {Objective::Eps, "eps"}, {Objective::V, "v"}, {Objective::Flow, "flow"}};
};
template <>
struct Choices<TimeSampling> {
  static constexpr const char* what = "training-time distribution";
  static constexpr std::pair<TimeSampling, const char*> table[] = {{TimeSampling::Uniform, "uniform"},
                                                                   {TimeSampling::LogitNormal, "logit-normal"}};
};
template <>
struct Choices<GuidanceSchedule> {
  static constexpr const char* what = "guidance schedule";
  static constexpr std::pair<GuidanceSchedule, const char*> table[] = {{GuidanceSchedule::Constant, "constant"},
                                                                       {GuidanceSchedule::PowerCosine, "power-cosine"}};
};
template <>
struct Choices<OptimizerKind> {
  static constexpr const char* what = "optimiser";
  static constexpr std::pair<OptimizerKind, const char*> table[] = {{OptimizerKind::AdamW, "adamw"},
                                                                    {OptimizerKind::Adan, "adan"}};
};
template <>
struct Choices<PosEmbedResampling> {
  static constexpr const char* what = "positional-embedding resampling";
  static constexpr std::pair<PosEmbedResampling, const char*> table[] = {
      {PosEmbedResampling::Extrapolate, "extrapolate"},
      {PosEmbedResampling::Interpolate, "interpolate"},
      {PosEmbedResampling::RectifiedGrid, "rectified_grid"}};
};
template <>
struct Choices<GridConvention> {
  static constexpr const char* what = "grid convention";
  static constexpr std::pair<GridConvention, const char*> table[] = {
      {GridConvention::Center, "center"}, {GridConvention::Corners, "corners"}, {GridConvention::Origin, "origin"}};
};

// True for the enums that have a Choices table.
template <class E, class = void>
struct is_choice : std::false_type {};
template <class E>
struct is_choice<E, std::void_t<decltype(Choices<E>::table)>> : std::true_type {};
template <class E>
inline constexpr bool is_choice_v = is_choice<E>::value;

// The name of a value ("dpm++2m").
template <class E>
const char* choice_name(E value) {
  for (const auto& [v, name] : Choices<E>::table)
    if (v == value) return name;
  return "?";  // unreachable for values of E
}

// Every name, in table order.
template <class E>
std::vector<std::string> choice_names() {
  std::vector<std::string> out;
  for (const auto& entry : Choices<E>::table) out.push_back(entry.second);
  return out;
}

// The value named `name`, if any (exact, case-sensitive).
template <class E>
std::optional<E> choice_from_name(const std::string& name) {
  for (const auto& [v, n] : Choices<E>::table)
    if (name == n) return v;
  return std::nullopt;
}

// The value named `name`, else SpecError(key_path, not_one_of(...)).
template <class E>
E parse_choice(const std::string& name, const std::string& key_path) {
  if (auto v = choice_from_name<E>(name)) return *v;
  throw SpecError(key_path, not_one_of(name, choice_names<E>()));
}

}  // namespace ldm
