#include "shared/core/spec_json.h"

#include <set>

#include "shared/core/error.h"
#include "shared/core/recipes/card.h"
#include "shared/core/text.h"

namespace ldm {
namespace {

using nlohmann::json;

struct JsonWriter {
  json* out;
  std::vector<std::string> omit_when_default = {};

  // The JSON object of `s`, without the omit_when_default keys that hold their defaults.
  template <class S>
  static json render(S& s) {
    json child = json::object();
    JsonWriter w{&child};
    describe(w, s);
    if (!w.omit_when_default.empty()) {
      S defaults{};
      json def = json::object();
      JsonWriter dw{&def};
      describe(dw, defaults);
      for (const std::string& key : w.omit_when_default)
        if (child.contains(key) && def.contains(key) && child[key] == def[key]) child.erase(key);
    }
    return child;
  }

  template <class T>
  void field(const char* key, T& value, const FieldMeta& meta) {
    if constexpr (is_choice_v<T>) (*out)[key] = choice_name(value);
    else (*out)[key] = value;
    if (meta.omit_when_default) omit_when_default.push_back(key);
  }
  template <class S>
  void table(const char* key, S& sub, const char*) {
    (*out)[key] = render(sub);
  }
  template <class S>
  void optional_table(const char* key, S& sub, const char*) {
    S defaults{};
    json value = render(sub);
    if (value != render(defaults)) (*out)[key] = std::move(value);
  }
  template <class S>
  void array(const char* key, std::vector<S>& items, const char*) {
    json arr = json::array();
    for (auto& item : items) arr.push_back(render(item));
    (*out)[key] = std::move(arr);
  }
  void overrides(json& patch, const char*) {
    for (const std::string& table : stage_override_tables())
      if (patch.contains(table) && !patch[table].empty()) (*out)[table] = patch[table];
  }
};

struct JsonReader {
  const json* in;
  std::string prefix;  // "recipe." etc.
  std::vector<std::string> known;
  // A whole document as spec_to_json writes it (not a sparse patch): a key it leaves out because
  // it held its struct default (FieldMeta::omit_when_default) reads as that default, not as
  // whatever the target held (a family's card may set another: mdt's cfg_schedule).
  bool complete = false;
  json struct_defaults = json::object();  // complete: this table's fields at their struct defaults

  std::string path(const char* key) const { return prefix + key; }

  void read(const std::string& p, const json& j, std::int64_t& v) {
    if (!j.is_number_integer()) throw SpecError(p, "expected an integer, got " + std::string(j.type_name()));
    v = j.get<std::int64_t>();
  }
  void read(const std::string& p, const json& j, double& v) {
    if (!j.is_number()) throw SpecError(p, "expected a number, got " + std::string(j.type_name()));
    v = j.get<double>();
  }
  void read(const std::string& p, const json& j, std::string& v) {
    if (!j.is_string()) throw SpecError(p, "expected a string, got " + std::string(j.type_name()));
    v = j.get<std::string>();
  }
  template <class E, class = std::enable_if_t<is_choice_v<E>>>
  void read(const std::string& p, const json& j, E& v) {
    if (!j.is_string()) throw SpecError(p, "expected a string, got " + std::string(j.type_name()));
    v = parse_choice<E>(j.get<std::string>(), p);
  }
  template <class T>
  void read(const std::string& p, const json& j, std::vector<T>& v) {
    if (!j.is_array()) throw SpecError(p, "expected an array, got " + std::string(j.type_name()));
    v.clear();
    for (std::size_t i = 0; i < j.size(); ++i) {
      T item{};
      read(p + "." + std::to_string(i), j[i], item);
      v.push_back(std::move(item));
    }
  }
  void read(const std::string& p, const json& j, bool& v) {
    if (!j.is_boolean()) throw SpecError(p, "expected a boolean, got " + std::string(j.type_name()));
    v = j.get<bool>();
  }

  template <class T>
  void field(const char* key, T& value, const FieldMeta& meta) {
    known.push_back(key);
    auto it = in->find(key);
    if (it == in->end()) {
      if (complete && meta.omit_when_default && struct_defaults.contains(key))
        read(path(key), struct_defaults[key], value);
      return;
    }
    read(path(key), *it, value);
    check_field(path(key), value, meta);
  }
  template <class S>
  void optional_table(const char* key, S& sub, const char* doc) {
    table(key, sub, doc);
  }
  template <class S>
  void table(const char* key, S& sub, const char*) {
    known.push_back(key);
    auto it = in->find(key);
    if (it == in->end()) return;
    read_table(*it, path(key), sub, complete);
  }
  template <class S>
  void array(const char* key, std::vector<S>& items, const char*) {
    known.push_back(key);
    auto it = in->find(key);
    if (it == in->end()) return;
    if (!it->is_array()) throw SpecError(path(key), "expected an array of tables");
    items.clear();
    for (std::size_t i = 0; i < it->size(); ++i) {
      S item;
      read_table((*it)[i], path(key) + "." + std::to_string(i), item, complete);
      items.push_back(std::move(item));
    }
  }

  // A stage's overrides are kept as written; stage_view() and validate() check them against the
  // tables they override.
  void overrides(json& patch, const char*) {
    patch = json::object();
    for (const std::string& table : stage_override_tables()) {
      known.push_back(table);
      auto it = in->find(table);
      if (it == in->end()) continue;
      if (!it->is_object()) throw SpecError(path(table.c_str()), "expected a table");
      if (!it->empty()) patch[table] = *it;
    }
  }

  template <class S>
  static void read_table(const json& j, const std::string& p, S& sub, bool complete = false) {
    if (!j.is_object()) throw SpecError(p, "expected a table");
    JsonReader r{&j, p.empty() ? "" : p + ".", {}, complete};
    if (complete) {  // every field of S at its struct default, omitted ones included
      S fresh{};
      JsonWriter all{&r.struct_defaults};
      describe(all, fresh);
    }
    describe(r, sub);
    r.reject_unknown();
  }

  void reject_unknown() const {
    std::set<std::string> k(known.begin(), known.end());
    for (auto it = in->begin(); it != in->end(); ++it) {
      if (!k.count(it.key())) throw SpecError(prefix + it.key(), "unknown key" + did_you_mean(it.key(), known));
    }
  }
};

}  // namespace

namespace {
std::string optimizer_name(const nlohmann::json& recipe) {
  if (recipe.contains("optimizer") && recipe["optimizer"].is_object() && recipe["optimizer"].contains("name") &&
      recipe["optimizer"]["name"].is_string())
    return recipe["optimizer"]["name"].get<std::string>();
  return "";
}
}  // namespace

json spec_to_json(const ExperimentSpec& spec) { return JsonWriter::render(const_cast<ExperimentSpec&>(spec)); }

ExperimentSpec stage_view(const ExperimentSpec& spec, std::size_t index) {
  ExperimentSpec view = spec;
  const StageSpec& stage = spec.stages.at(index);
  const std::string prefix = "stage." + std::to_string(index) + ".";
  if (!stage.task.empty()) view.task = stage.task;
  const json& o = stage.overrides;
  if (o.contains("dataset")) JsonReader::read_table(o["dataset"], prefix + "dataset", view.dataset);
  if (o.contains("text_encoder")) JsonReader::read_table(o["text_encoder"], prefix + "text_encoder", view.text_encoder);
  if (o.contains("recipe")) {
    // A stage that switches optimiser starts from that optimiser's own defaults, as a file does
    // (recipe_defaults), so it does not inherit the other optimiser's betas.
    const std::string name = optimizer_name(o["recipe"]);
    const std::optional<OptimizerKind> kind = choice_from_name<OptimizerKind>(name);
    if (kind && *kind != view.recipe.optimizer.name)
      view.recipe.optimizer = recipe_defaults(view.recipe.family, name).optimizer;
    JsonReader::read_table(o["recipe"], prefix + "recipe", view.recipe);
  }
  return view;
}

namespace {
// Only the keys `shape` has, recursively, with their values from `full`.
json restricted_to(const json& full, const json& shape) {
  json out = json::object();
  for (const auto& [key, value] : shape.items()) {
    if (!full.contains(key)) continue;
    out[key] = value.is_object() && full[key].is_object() ? restricted_to(full[key], value) : full[key];
  }
  return out;
}
}  // namespace

void normalise_stage_overrides(ExperimentSpec& spec) {
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    StageSpec& stage = spec.stages[i];
    if (stage.overrides.empty()) continue;
    // Read through the tables they override (the same checks as the experiment's keys), then
    // written back in canonical form: "shift = 2" and "shift = 2.0" are one spec and one hash.
    const json resolved = spec_to_json(stage_view(spec, i));
    json normal = json::object();
    for (const std::string& table : stage_override_tables())
      if (stage.overrides.contains(table)) normal[table] = restricted_to(resolved[table], stage.overrides[table]);
    stage.overrides = std::move(normal);
  }
}

void read_recipe_table(const json& table, const std::string& path, RecipeSpec& recipe) {
  JsonReader::read_table(table, path, recipe);
}

void read_stage_table(const json& table, const std::string& path, StageSpec& stage) {
  JsonReader::read_table(table, path, stage);
}

void apply_stage_defaults(ExperimentSpec& spec, const std::function<bool(std::size_t, const std::string&)>& is_set) {
  const RecipeCard* card = find_recipe_card(spec.recipe.family);
  if (!card) return;  // validate() names the unknown family
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    if (spec.stages[i].kind == "eval") continue;
    json patch = recipe_defaults_table(*card, "stage");
    for (auto it = patch.begin(); it != patch.end();) it = is_set(i, it.key()) ? patch.erase(it) : std::next(it);
    if (!patch.empty()) read_stage_table(patch, "stage." + std::to_string(i), spec.stages[i]);
  }
}

ExperimentSpec spec_from_json(const json& j) {
  ExperimentSpec spec;
  // Start from the family's own recipe defaults; the document's keys override them.
  if (j.is_object() && j.contains("recipe") && j["recipe"].is_object() && j["recipe"].contains("family") &&
      j["recipe"]["family"].is_string())
    spec.recipe = recipe_defaults(j["recipe"]["family"].get<std::string>(), optimizer_name(j["recipe"]));
  JsonReader::read_table(j, "", spec, /*complete=*/true);
  apply_stage_defaults(spec, [&](std::size_t i, const std::string& key) {
    const auto stages = j.find("stage");  // read_table() checked its shape when it has stages
    return stages != j.end() && i < stages->size() && (*stages)[i].contains(key);
  });
  normalise_stage_overrides(spec);
  validate(spec);
  return spec;
}

}  // namespace ldm
