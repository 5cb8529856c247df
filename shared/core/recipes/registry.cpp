// The table of recipe cards: the six built-in families in the order tools list them, then cards
// registered at run time (tests, plug-ins).
#include <algorithm>
#include <deque>
#include <mutex>

#include "shared/core/error.h"
#include "shared/core/recipes/card.h"
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
