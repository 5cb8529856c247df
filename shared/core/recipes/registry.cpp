// The table of recipe cards: the six built-in families in the order tools list them, then cards
// registered at run time (tests, plug-ins).
#include <algorithm>
#include <deque>
#include <map>
#include <mutex>

#include "shared/core/error.h"
#include "shared/core/recipes/card.h"
#include "shared/core/spec_json.h"
#include "shared/core/text.h"

namespace ldm {

namespace recipes {
RecipeCard unet_card();      // recipes/unet.cpp
RecipeCard dit_card();       // recipes/dit.cpp
RecipeCard mdt_card();       // recipes/mdt.cpp
RecipeCard pixart_card();    // recipes/pixart.cpp
RecipeCard mmdit_card();     // recipes/mmdit.cpp
RecipeCard proposed_card();  // recipes/proposed.cpp
}  // namespace recipes

namespace {

// Every default names a source and a key the experiment file has: applied once to the spec's
// structs, so a typo in a card fails when the card is registered, not in some later experiment.
void check_defaults(const RecipeCard& card) {
  const std::string what = "recipe card '" + card.family + "' default ";
  for (const RecipeDefault& d : card.defaults) {
    if (d.source.empty()) throw Error(what + "'" + d.key + "' names no source");
    const bool stage = d.key.rfind("stage.", 0) == 0;
    if (d.key.rfind("recipe.", 0) != 0 && !stage)
      throw Error(what + "'" + d.key + "': keys start with 'recipe.' or 'stage.'");
    if (stage && d.key.find('.', 6) != std::string::npos)
      throw Error(what + "'" + d.key + "': a stage default is one key of the stage table");
    if (d.key == "recipe.family" || d.key == "recipe.preset")
      throw Error(what + "'" + d.key + "': the family and preset are not recipe defaults");
  }
  try {
    RecipeSpec recipe;
    StageSpec st;
    read_recipe_table(recipe_defaults_table(card, "recipe"), "recipe", recipe);
    read_stage_table(recipe_defaults_table(card, "stage"), "stage", st);
  } catch (const SpecError& e) {
    throw Error(what + e.what());
  } catch (const nlohmann::json::exception& e) {  // e.g. both recipe.x and recipe.x.y
    throw Error(what + "keys that do not nest: " + e.what());
  }
}

struct Registry {
  std::mutex mutex;
  std::deque<RecipeCard> cards;  // a deque: pointers handed out stay valid when cards are added

  Registry() {
    for (RecipeCard (*make)() : {recipes::unet_card, recipes::dit_card, recipes::mdt_card, recipes::pixart_card,
                                 recipes::mmdit_card, recipes::proposed_card})
      add(make());
  }

  void add(RecipeCard card) {
    if (card.family.empty() || !card.param_count || !card.gflops || !card.latent_grid || !card.size_text)
      throw Error("recipe card '" + card.family + "' lacks a name, param_count, gflops, latent_grid or size_text");
    for (const RecipeCard& c : cards)
      if (c.family == card.family) throw Error("recipe family '" + card.family + "' is registered twice");
    if (card.presets.empty()) throw Error("recipe card '" + card.family + "' has no presets");
    bool has_default = false;
    for (PresetInfo& p : card.presets) {
      p.family = card.family;
      has_default = has_default || p.name == card.default_preset;
    }
    if (!has_default)
      throw Error("recipe card '" + card.family + "': default preset '" + card.default_preset + "' is not a preset");
    check_defaults(card);
    cards.push_back(std::move(card));
  }
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

std::vector<const RecipeCard*> recipe_cards() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<const RecipeCard*> out;
  for (const RecipeCard& c : r.cards) out.push_back(&c);
  return out;
}

bool register_recipe_card(RecipeCard card) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.add(std::move(card));
  return true;
}

const RecipeCard* find_recipe_card(const std::string& family) {
  for (const RecipeCard* c : recipe_cards())
    if (c->family == family) return c;
  return nullptr;
}

const RecipeCard& recipe_card(const std::string& family, const std::string& key_path) {
  if (const RecipeCard* c = find_recipe_card(family)) return *c;
  const auto families = recipe_families();
  throw SpecError(key_path, "unknown recipe family '" + family + "'; known: " + join(families, ", ") +
                                did_you_mean(family, families));
}

nlohmann::json recipe_defaults_table(const RecipeCard& card, const std::string& table) {
  nlohmann::json out = nlohmann::json::object();
  const std::string prefix = table + ".";
  for (const RecipeDefault& d : card.defaults) {
    if (d.key.rfind(prefix, 0) != 0) continue;
    nlohmann::json* node = &out;
    const std::vector<std::string> parts = split(d.key.substr(prefix.size()), '.');
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) node = &(*node)[parts[i]];
    (*node)[parts.back()] = d.value;
  }
  return out;
}

namespace {

// Every field of a struct as (dotted path, value as the JSON codec writes it, documentation), in
// declaration order, defaults included (the codec leaves some out at their defaults).
struct FieldLister {
  struct Field {
    std::string key;
    nlohmann::json value;
    std::string doc;
  };
  std::string prefix;
  std::vector<Field>* out;
  template <class T>
  void field(const char* key, T& value, const FieldMeta& meta) {
    if constexpr (is_choice_v<T>) out->push_back({prefix + key, choice_name(value), meta.doc});
    else out->push_back({prefix + key, value, meta.doc});
  }
  template <class S>
  void table(const char* key, S& sub, const char*) {
    FieldLister inner{prefix + key + ".", out};
    describe(inner, sub);
  }
  template <class S>
  void optional_table(const char* key, S& sub, const char* doc) {
    table(key, sub, doc);
  }
  template <class S>
  void array(const char*, std::vector<S>&, const char*) {}
  void overrides(nlohmann::json&, const char*) {}
};

template <class S>
std::vector<FieldLister::Field> list_fields(S& s, const std::string& prefix) {
  std::vector<FieldLister::Field> out;
  FieldLister lister{prefix, &out};
  describe(lister, s);
  return out;
}

}  // namespace

std::vector<DefaultOrigin> recipe_default_origins(const RecipeCard& card) {
  std::map<std::string, const RecipeDefault*> from_card;
  for (const RecipeDefault& d : card.defaults) from_card[d.key] = &d;  // the last entry of a key wins
  ExperimentSpec spec;
  spec.recipe = recipe_defaults(card.family);
  spec.stages.emplace_back();
  apply_stage_defaults(spec, [](std::size_t, const std::string&) { return false; });
  std::vector<FieldLister::Field> fields = list_fields(spec.recipe, "recipe.");
  for (FieldLister::Field& f : list_fields(spec.stages[0], "stage."))
    if (f.key == "stage.lr" || from_card.count(f.key)) fields.push_back(std::move(f));
  std::vector<DefaultOrigin> out;
  for (const FieldLister::Field& f : fields) {
    if (f.key == "recipe.family" || f.key == "recipe.preset") continue;
    const auto entry = from_card.find(f.key);
    if (entry != from_card.end()) out.push_back({f.key, f.value, entry->second->source, true});
    else out.push_back({f.key, f.value, "spec default: " + f.doc, false});
  }
  return out;
}

std::vector<std::string> recipe_families() {
  std::vector<std::string> out;
  for (const RecipeCard* c : recipe_cards()) out.push_back(c->family);
  return out;
}

bool is_known_family(const std::string& family) { return find_recipe_card(family) != nullptr; }

std::vector<std::string> preset_names(const std::string& family) {
  std::vector<std::string> out;
  if (const RecipeCard* c = find_recipe_card(family))
    for (const PresetInfo& p : c->presets) out.push_back(p.name);
  return out;
}

const PresetInfo* find_preset(const std::string& family, const std::string& name) {
  if (const RecipeCard* c = find_recipe_card(family))
    for (const PresetInfo& p : c->presets)
      if (p.name == name) return &p;
  return nullptr;
}

const PresetInfo& recipe_preset(const std::string& family, const std::string& name, const std::string& key_path) {
  if (const PresetInfo* p = find_preset(family, name)) return *p;
  const auto names = preset_names(family);
  throw SpecError(key_path, "unknown preset '" + name + "' for family '" + family + "'; known: " + join(names, ", ") +
                                did_you_mean(name, names));
}

std::vector<std::string> family_tasks(const std::string& family) {
  // The paper's Table 1 runs every architecture on ImageNet (class) and CC12M (text) [paper].
  const RecipeCard* c = find_recipe_card(family);
  return c ? c->tasks : std::vector<std::string>{};
}

bool family_supports_task(const std::string& family, const std::string& task) {
  const auto t = family_tasks(family);
  return std::find(t.begin(), t.end(), task) != t.end();
}

std::int64_t control_embedder_param_count(std::int64_t dim, const ControlShape& c) {
  if (!c.enabled) return 0;
  const auto linear = [](std::int64_t in, std::int64_t out) { return in * out + out; };
  std::int64_t n = 0;
  const std::pair<bool, int> groups[] = {{c.size, 2}, {c.crop, 4}, {c.flip, 1}, {c.aspect, 1}};
  for (const auto& [on, columns] : groups)
    if (on) n += linear(columns * c.frequency_size, dim) + linear(dim, dim) + (c.learned_null ? dim : 0);
  return n;
}

std::int64_t analytic_param_count(const PresetInfo& p, const ModelShape& s) {
  return recipe_card(p.family).param_count(p, s);
}

double analytic_gflops(const PresetInfo& p, const ModelShape& s) { return recipe_card(p.family).gflops(p, s); }

}  // namespace ldm
