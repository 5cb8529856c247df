#include "shared/spec_toml/sweep.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/recipes/card.h"
#include "shared/core/text.h"
#include "shared/spec_toml/toml_document.h"

namespace ldm {
namespace {

using Position = toml::source_position;

std::string location(const std::string& source, const Position& pos) {
  if (!pos) return source + ":1:1";
  return source + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
}

bool before(const Position& a, const Position& b) {
  return a.line < b.line || (a.line == b.line && a.column < b.column);
}

// One axis: a single key, or the keys of [sweep.zip] that vary together.
struct Axis {
  std::vector<std::string> keys;
  std::vector<std::vector<const toml::node*>> values;  // values[i][k]: the i-th value of keys[k]
  std::vector<Position> positions;                     // where each key's array was written
};

// The keys of a table in the order they were written (toml++ orders them by name). Unquoted dotted
// keys (`recipe.ema.decay = [...]`) parse as nested tables: they come back as one dotted key.
void collect_keys(const toml::table& t, const std::string& prefix,
                  std::vector<std::pair<std::string, const toml::node*>>& out) {
  for (auto&& [key, node] : t) {
    const std::string name = prefix + std::string(key.str());
    if (const toml::table* sub = node.as_table()) collect_keys(*sub, name + ".", out);
    else out.emplace_back(name, &node);
  }
}

std::vector<std::pair<std::string, const toml::node*>> in_file_order(const toml::table& t) {
  std::vector<std::pair<std::string, const toml::node*>> out;
  collect_keys(t, "", out);
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return before(a.second->source().begin, b.second->source().begin); });
  return out;
}

nlohmann::json json_value(const toml::node& node) {
  if (const auto* x = node.as_string()) return x->get();
  if (const auto* x = node.as_integer()) return x->get();
  if (const auto* x = node.as_floating_point()) return x->get();
  if (const auto* x = node.as_boolean()) return x->get();
  return nullptr;
}

// The value as it appears in a cell name: 0.5 -> "0.5", 5e-4 -> "0.0005", 1.0 -> "1", "tiny/2" as is.
std::string value_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v.get<double>(), std::chars_format::fixed);
    return std::string(buf, r.ptr);
  }
  return v.dump();
}

std::string label(const std::string& key, const nlohmann::json& value) {
  const std::string last = key.substr(key.rfind('.') + 1);
  if (key == "seed") return "s" + value_text(value);
  if (last == "family" || last == "preset") return value_text(value);
  return last + value_text(value);
}

std::string sanitise(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') out += c;
    else out += c == '.' ? 'p' : '_';
  }
  return out;
}

// Sets `key` (dotted; numeric parts index arrays of tables) in `root` to a copy of `value`,
// creating missing tables. Throws SpecError at `where` when the path cannot exist.
void set_path(toml::table& root, const std::string& key, const toml::node& value, const std::string& what,
              const std::string& where) {
  const std::vector<std::string> parts = split(key, '.');
  toml::node* cur = &root;
  std::string walked;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    const bool last = i + 1 == parts.size();
    const std::string here = walked.empty() ? part : walked + "." + part;
    if (auto* t = cur->as_table()) {
      if (last) {
        value.visit([&](auto&& v) { t->insert_or_assign(part, v); });
        return;
      }
      if (!t->get(part)) t->insert(part, toml::table{});
      cur = t->get(part);
    } else if (auto* a = cur->as_array()) {
      std::size_t index = 0;
      const auto r = std::from_chars(part.data(), part.data() + part.size(), index);
      if (r.ec != std::errc() || r.ptr != part.data() + part.size() || index >= a->size())
        throw SpecError(key,
                        what + ": '" + here + "' does not exist (" + walked + " has " + std::to_string(a->size()) +
                            " entries, numbered from 0)",
                        where);
      if (last) {
        value.visit([&](auto&& v) { a->replace(a->cbegin() + static_cast<std::ptrdiff_t>(index), v); });
        return;
      }
      cur = a->get(index);
    } else {
      throw SpecError(key, what + ": '" + walked + "' is a value, not a table", where);
    }
    walked = here;
  }
}

// Merges `from` into `into`: tables recursively, everything else replaced.
void deep_merge(toml::table& into, const toml::table& from) {
  for (auto&& [key, node] : from) {
    toml::node* existing = into.get(key.str());
    if (existing && existing->is_table() && node.is_table()) {
      deep_merge(*existing->as_table(), *node.as_table());
      continue;
    }
    const std::string_view name = key.str();  // a lambda cannot capture a structured binding in C++17
    node.visit([&](auto&& v) { into.insert_or_assign(name, v); });
  }
}

// Where each value under [sweep.common] was written, by its path in the experiment
// ("recipe.ema.warmup"). Values only: a table path would also claim the base file's keys under it.
void common_positions(const toml::table& t, const std::string& path, std::map<std::string, Position>& out) {
  for (auto&& [key, node] : t) {
    const std::string here = path.empty() ? std::string(key.str()) : path + "." + std::string(key.str());
    if (const auto* sub = node.as_table()) common_positions(*sub, here, out);
    else out[here] = node.source().begin;
  }
}

const toml::table& table_at(const toml::table& sweep, const char* key, const std::string& source) {
  static const toml::table empty;
  const toml::node* node = sweep.get(key);
  if (!node) return empty;
  if (!node->is_table())
    throw SpecError(std::string("sweep.") + key, "expected a table", location(source, node->source().begin));
  return *node->as_table();
}

// The axes of [sweep]: the zip group, then [sweep.grid] in file order, then seeds.
std::vector<Axis> read_axes(const toml::table& sweep, const std::string& source) {
  std::vector<Axis> axes;
  const auto values_of = [&](const std::string& path, const toml::node& node) {
    const toml::array* arr = node.as_array();
    if (!arr || arr->empty())
      throw SpecError(path, "expected a non-empty array of values", location(source, node.source().begin));
    std::vector<const toml::node*> out;
    for (const toml::node& v : *arr) {
      if (v.is_table() || v.is_array())
        throw SpecError(path, "sweep values are strings, numbers or booleans", location(source, v.source().begin));
      out.push_back(&v);
    }
    return out;
  };
  const auto check_key = [&](const std::string& path, const std::string& key, const toml::node& node) {
    if (key == "name" || key.empty())
      throw SpecError(path, "'" + key + "' cannot be swept (cells are named after their values)",
                      location(source, node.source().begin));
  };
  const toml::table& zip = table_at(sweep, "zip", source);
  if (!zip.empty()) {
    Axis axis;
    for (const auto& [key, node] : in_file_order(zip)) {
      check_key("sweep.zip." + key, key, *node);
      std::vector<const toml::node*> values = values_of("sweep.zip." + key, *node);
      if (!axis.keys.empty() && values.size() != axis.values.size())
        throw SpecError("sweep.zip." + key,
                        "zipped keys vary together and need equally many values: " + std::to_string(values.size()) +
                            " here, " + std::to_string(axis.values.size()) + " for '" + axis.keys.front() + "'",
                        location(source, node->source().begin));
      if (axis.values.empty()) axis.values.resize(values.size());
      for (std::size_t i = 0; i < values.size(); ++i) axis.values[i].push_back(values[i]);
      axis.keys.push_back(key);
      axis.positions.push_back(node->source().begin);
    }
    axes.push_back(std::move(axis));
  }
  for (const auto& [key, node] : in_file_order(table_at(sweep, "grid", source))) {
    check_key("sweep.grid." + key, key, *node);
    Axis axis;
    axis.keys = {key};
    for (const toml::node* v : values_of("sweep.grid." + key, *node)) axis.values.push_back({v});
    axis.positions = {node->source().begin};
    axes.push_back(std::move(axis));
  }
  if (const toml::node* seeds = sweep.get("seeds")) {
    Axis axis;
    axis.keys = {"seed"};
    std::set<std::int64_t> seen;
    for (const toml::node* v : values_of("sweep.seeds", *seeds)) {
      if (!v->is_integer() || !seen.insert(v->as_integer()->get()).second)
        throw SpecError("sweep.seeds", "seeds are distinct integers", location(source, v->source().begin));
      axis.values.push_back({v});
    }
    axis.positions = {seeds->source().begin};
    axes.push_back(std::move(axis));
  }
  std::set<std::string> keys;
  for (const Axis& axis : axes)
    for (std::size_t k = 0; k < axis.keys.size(); ++k)
      if (!keys.insert(axis.keys[k]).second)
        throw SpecError(axis.keys[k], "is swept twice (in [sweep.zip], [sweep.grid] or as seeds)",
                        location(source, axis.positions[k]));
  return axes;
}

// What every cell of one sweep is expanded from.
struct CellContext {
  const std::string& text;  // the file's text (re-parsed per cell)
  const std::string& source;
  const std::vector<Axis>& axes;
  const toml::table& common;                      // [sweep.common]
  const std::map<std::string, Position>& pinned;  // key path -> where a value copied into cells was written
  bool family_swept = false, preset_given = false;
};

// The cell at odometer position `at`: its values, a name not in `names` (added), its validated spec.
SweepCell expand_cell(const CellContext& ctx, const std::string& sweep, const std::vector<std::size_t>& at,
                      std::set<std::string>& names) {
  SweepCell cell;
  cell.values = nlohmann::json::object();
  std::vector<std::string> labels;
  for (std::size_t a = 0; a < ctx.axes.size(); ++a)
    for (std::size_t k = 0; k < ctx.axes[a].keys.size(); ++k) {
      const std::string& key = ctx.axes[a].keys[k];
      cell.values[key] = json_value(*ctx.axes[a].values[at[a]][k]);
      labels.push_back(label(key, cell.values[key]));
    }
  cell.name = sweep_cell_name(sweep, labels, cell.values);
  if (!names.insert(cell.name).second) {  // two cells sanitised alike
    cell.name = cell.name.substr(0, std::min<std::size_t>(cell.name.size(), 55)) + "-" +
                hex64(fnv1a64(cell.values.dump())).substr(0, 8);
    names.insert(cell.name);
  }
  const std::string what = "sweep cell " + cell.name + " (" + cell.values.dump() + ")";

  // Re-parsed per cell: toml++ copies do not keep source positions, and errors need them.
  toml::table doc = parse_toml_text(ctx.text, ctx.source);
  doc.erase("sweep");
  if (ctx.family_swept) doc.insert_or_assign("recipe", toml::table{});
  deep_merge(doc, ctx.common);
  for (std::size_t a = 0; a < ctx.axes.size(); ++a)
    for (std::size_t k = 0; k < ctx.axes[a].keys.size(); ++k)
      set_path(doc, ctx.axes[a].keys[k], *ctx.axes[a].values[at[a]][k], what,
               location(ctx.source, ctx.axes[a].positions[k]));
  const nlohmann::json family = cell.values.value("recipe.family", nlohmann::json());
  if (ctx.family_swept && !ctx.preset_given && family.is_string())
    if (const RecipeCard* card = find_recipe_card(family.get<std::string>()))
      set_path(doc, "recipe.preset", toml::value<std::string>(card->default_preset), what, location(ctx.source, {}));
  doc.insert_or_assign("name", cell.name);
  try {
    cell.spec = parse_experiment_table(doc, ctx.source);
  } catch (const SpecError& e) {
    // A key copied in from [sweep] has no position of its own: point at where it was written.
    std::string where = e.location(), best;
    for (const auto& [path, pos] : ctx.pinned)
      if ((e.key_path() == path || e.key_path().rfind(path + ".", 0) == 0) && path.size() >= best.size()) {
        best = path;
        where = location(ctx.source, pos);
      }
    throw SpecError(e.key_path(), what + ": " + e.detail(), where);
  }
  return cell;
}

}  // namespace

std::string sweep_cell_name(const std::string& sweep, const std::vector<std::string>& labels,
                            const nlohmann::json& values) {
  std::string name = sweep;
  for (const std::string& l : labels) name += "-" + sanitise(l);
  if (name.size() > 64) name = name.substr(0, 55) + "-" + hex64(fnv1a64(values.dump())).substr(0, 8);
  return name;
}

bool is_sweep_file(const std::string& path) {
  return parse_toml_text(read_experiment_text(path), path).contains("sweep");
}

SweepSpec parse_sweep_file(const std::string& path, const std::string& name) {
  return parse_sweep_string(read_experiment_text(path), path, name);
}

SweepSpec parse_sweep_string(const std::string& text, const std::string& source, const std::string& name) {
  const toml::table base = parse_toml_text(text, source);
  const toml::node* sweep_node = base.get("sweep");
  if (!sweep_node) throw SpecError("sweep", "the file has no [sweep] table", location(source, {}));
  if (!sweep_node->is_table())
    throw SpecError("sweep", "expected a table", location(source, sweep_node->source().begin));
  const toml::table& sweep = *sweep_node->as_table();
  const std::vector<std::string> known = {"name", "seeds", "grid", "zip", "common"};
  for (auto&& [key, node] : sweep)
    if (std::find(known.begin(), known.end(), key.str()) == known.end())
      throw SpecError("sweep." + std::string(key.str()),
                      "unknown key '" + std::string(key.str()) + "'" + did_you_mean(std::string(key.str()), known),
                      location(source, node.source().begin));

  SweepSpec out;
  out.name = base["name"].value_or(std::string());
  if (const toml::node* name = sweep.get("name")) {
    if (!name->is_string()) throw SpecError("sweep.name", "expected a string", location(source, name->source().begin));
    out.name = name->as_string()->get();
  }
  if (!name.empty()) out.name = name;
  if (!valid_name(out.name))
    throw SpecError("sweep.name", "'" + out.name + "' must be 1-64 characters of [A-Za-z0-9_-]",
                    location(source, sweep_node->source().begin));
  const std::vector<Axis> axes = read_axes(sweep, source);
  if (axes.empty())
    throw SpecError("sweep", "a sweep needs seeds, [sweep.grid] or [sweep.zip]",
                    location(source, sweep_node->source().begin));
  std::size_t count = 1;
  for (const Axis& axis : axes) {
    count *= axis.values.size();
    if (count > kMaxSweepCells)
      throw SpecError("sweep", "the grid has more than " + std::to_string(kMaxSweepCells) + " cells",
                      location(source, sweep_node->source().begin));
    for (const std::string& key : axis.keys) out.axes.push_back(key);
  }
  const bool family_swept = std::count(out.axes.begin(), out.axes.end(), "recipe.family") > 0;
  const toml::table& common = table_at(sweep, "common", source);
  std::map<std::string, Position> pinned;  // key path -> where a value copied into the cells was written
  common_positions(common, "", pinned);
  for (const Axis& axis : axes)
    for (std::size_t k = 0; k < axis.keys.size(); ++k) pinned[axis.keys[k]] = axis.positions[k];
  const bool preset_given = std::count(out.axes.begin(), out.axes.end(), "recipe.preset") > 0 ||
                            (common.get("recipe") && common.get("recipe")->as_table() &&
                             common.get("recipe")->as_table()->contains("preset"));

  const CellContext ctx{text, source, axes, common, pinned, family_swept, preset_given};
  std::set<std::string> names;
  std::vector<std::size_t> at(axes.size(), 0);  // the odometer: the value index of each axis
  for (std::size_t c = 0; c < count; ++c) {
    out.cells.push_back(expand_cell(ctx, out.name, at, names));
    for (std::size_t a = axes.size(); a-- > 0;) {  // next cell: the last axis turns fastest
      if (++at[a] < axes[a].values.size()) break;
      at[a] = 0;
    }
  }
  return out;
}

}  // namespace ldm
