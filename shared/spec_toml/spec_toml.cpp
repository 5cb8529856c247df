#include "shared/spec_toml/spec_toml.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <string_view>

#include <toml++/toml.h>

#include "shared/core/error.h"
#include "shared/core/spec_json.h"
#include "shared/core/text.h"
#include "shared/spec_toml/toml_document.h"

namespace ldm {
namespace {

// ---- reading ----------------------------------------------------------------------------------

// State shared by every table reader of one document: the source name for locations, and where
// each key path was found, so errors raised after reading (validate()) can still point at a line.
class ReadContext {
 public:
  explicit ReadContext(std::string source) : source_(std::move(source)) {}

  void remember(const std::string& path, const toml::node& node) { positions_[path] = node.source().begin; }

  std::string location(const toml::source_position& pos) const {
    // toml++ leaves positions of nodes it synthesised (none today) at 0:0; "file:1:1" then.
    if (!pos) return source_ + ":1:1";
    return source_ + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
  }

  SpecError error(const std::string& path, const std::string& message, const toml::source_position& pos) const {
    return SpecError(path, message, location(pos));
  }

  // The location of `path`, else of its nearest recorded parent ("stage.0.batch_size" ->
  // "stage.0" -> "stage" -> ""), else the start of the file.
  std::string nearest_location(std::string path) const {
    for (;;) {
      auto it = positions_.find(path);
      if (it != positions_.end()) return location(it->second);
      if (path.empty()) return location({});
      const auto dot = path.rfind('.');
      path = dot == std::string::npos ? std::string() : path.substr(0, dot);
    }
  }

 private:
  std::string source_;
  std::map<std::string, toml::source_position> positions_;
};

// TOML node type as a noun, for "expected X, got <noun>".
std::string type_noun(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// The keys a struct declares (fields, tables and arrays), from its describe() declarations.
struct KeyLister {
  std::vector<std::string> keys;
  template <class T>
  void field(const char* key, T&, const FieldMeta&) {
    keys.push_back(key);
  }
  template <class S>
  void table(const char* key, S&, const char*) {
    keys.push_back(key);
  }
  template <class S>
  void optional_table(const char* key, S&, const char*) {
    keys.push_back(key);
  }
  template <class S>
  void array(const char* key, std::vector<S>&, const char*) {
    keys.push_back(key);
  }
  void overrides(nlohmann::json&, const char*) {
    for (const std::string& table : stage_override_tables()) keys.push_back(table);
  }
};

template <class S>
std::vector<std::string> declared_keys() {
  S scratch;
  KeyLister lister;
  describe(lister, scratch);
  return lister.keys;
}

// Reads one TOML table into the struct whose describe() it is given to; the TOML counterpart of
// JsonReader in shared/core/spec_json.cpp. Keys absent from the table keep their defaults.
class TomlReader {
 public:
  template <class S>
  static void read_table(const toml::table& in, const std::string& path, S& out, ReadContext& ctx) {
    ctx.remember(path, in);
    reject_unknown(in, path, declared_keys<S>(), ctx);
    TomlReader reader(in, path.empty() ? std::string() : path + ".", ctx);
    describe(reader, out);
  }

  template <class T>
  void field(const char* key, T& value, const FieldMeta& meta) {
    const toml::node* node = in_.get(key);
    if (!node) return;
    const std::string path = prefix_ + key;
    ctx_.remember(path, *node);
    read_value(path, *node, value);
    try {
      check_field(path, value, meta);
    } catch (const SpecError& e) {
      throw ctx_.error(path, e.detail(), node->source().begin);
    }
  }

  template <class S>
  void optional_table(const char* key, S& sub, const char* doc) {
    table(key, sub, doc);
  }
  template <class S>
  void table(const char* key, S& sub, const char*) {
    const toml::node* node = in_.get(key);
    if (!node) return;
    const std::string path = prefix_ + key;
    const toml::table* t = node->as_table();
    if (!t) throw ctx_.error(path, "expected a table, got " + type_noun(*node), node->source().begin);
    read_table(*t, path, sub, ctx_);
  }

  // A stage's [stage.recipe] etc. become its sparse JSON overrides, every key's position
  // remembered so that validate() (which checks them against the tables they override) can point
  // at the line.
  void overrides(nlohmann::json& patch, const char*) {
    patch = nlohmann::json::object();
    for (const std::string& table : stage_override_tables()) {
      const toml::node* node = in_.get(table);
      if (!node) continue;
      const std::string path = prefix_ + table;
      if (!node->as_table()) throw ctx_.error(path, "expected a table, got " + type_noun(*node), node->source().begin);
      nlohmann::json value = to_json(*node, path);
      if (!value.empty()) patch[table] = std::move(value);
    }
  }

  template <class S>
  void array(const char* key, std::vector<S>& items, const char*) {
    const toml::node* node = in_.get(key);
    if (!node) return;
    const std::string path = prefix_ + key;
    const toml::array* arr = node->as_array();
    if (!arr)
      throw ctx_.error(path, "expected an array of tables ([[" + path + "]]), got " + type_noun(*node),
                       node->source().begin);
    ctx_.remember(path, *node);
    items.clear();
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const toml::node& element = *arr->get(i);
      const std::string element_path = path + "." + std::to_string(i);
      const toml::table* t = element.as_table();
      if (!t) throw ctx_.error(element_path, "expected a table, got " + type_noun(element), element.source().begin);
      S item;  // starts from the declared defaults
      read_table(*t, element_path, item, ctx_);
      items.push_back(std::move(item));
    }
  }

 private:
  TomlReader(const toml::table& in, std::string prefix, ReadContext& ctx)
      : in_(in), prefix_(std::move(prefix)), ctx_(ctx) {}

  // toml::table is ordered by key, not by position; report the unknown key that comes first in
  // the file so the error matches what the user reads top to bottom.
  static void reject_unknown(const toml::table& in, const std::string& path, const std::vector<std::string>& known,
                             ReadContext& ctx) {
    const std::set<std::string, std::less<>> known_set(known.begin(), known.end());
    const toml::key* first = nullptr;
    for (auto&& [key, node] : in) {
      if (known_set.count(key.str())) continue;
      const auto& pos = key.source().begin;
      if (!first || pos.line < first->source().begin.line ||
          (pos.line == first->source().begin.line && pos.column < first->source().begin.column))
        first = &key;
    }
    if (!first) return;
    const std::string name(first->str());
    throw ctx.error(path.empty() ? name : path + "." + name, "unknown key '" + name + "'" + did_you_mean(name, known),
                    first->source().begin);
  }

  nlohmann::json to_json(const toml::node& node, const std::string& path) const {
    ctx_.remember(path, node);
    if (const auto* t = node.as_table()) {
      nlohmann::json out = nlohmann::json::object();
      for (auto&& [key, child] : *t) out[std::string(key.str())] = to_json(child, path + "." + std::string(key.str()));
      return out;
    }
    if (const auto* x = node.as_string()) return x->get();
    if (const auto* x = node.as_integer()) return x->get();
    if (const auto* x = node.as_floating_point()) return x->get();
    if (const auto* x = node.as_boolean()) return x->get();
    throw ctx_.error(path, "expected a value or a table, got " + type_noun(node), node.source().begin);
  }

  SpecError type_error(const std::string& path, const toml::node& node, const char* expected) const {
    return ctx_.error(path, std::string("expected ") + expected + ", got " + type_noun(node), node.source().begin);
  }

  void read_value(const std::string& path, const toml::node& node, std::int64_t& v) const {
    const auto* x = node.as_integer();
    if (!x) throw type_error(path, node, "an integer");
    v = x->get();
  }
  void read_value(const std::string& path, const toml::node& node, double& v) const {
    // "lr = 1" is a natural way to write 1.0, so integers are accepted for float fields.
    if (const auto* i = node.as_integer()) {
      v = static_cast<double>(i->get());
      return;
    }
    const auto* x = node.as_floating_point();
    if (!x) throw type_error(path, node, "a number");
    v = x->get();
  }
  void read_value(const std::string& path, const toml::node& node, std::string& v) const {
    const auto* x = node.as_string();
    if (!x) throw type_error(path, node, "a string");
    v = x->get();
  }
  template <class E, class = std::enable_if_t<is_choice_v<E>>>
  void read_value(const std::string& path, const toml::node& node, E& v) const {
    const auto* x = node.as_string();
    if (!x) throw type_error(path, node, "a string");
    try {
      v = parse_choice<E>(x->get(), path);
    } catch (const SpecError& e) {
      throw ctx_.error(path, e.detail(), node.source().begin);
    }
  }
  template <class T>
  void read_value(const std::string& path, const toml::node& node, std::vector<T>& v) const {
    const auto* arr = node.as_array();
    if (!arr) throw type_error(path, node, "an array");
    v.clear();
    for (std::size_t i = 0; i < arr->size(); ++i) {
      T item{};
      read_value(path + "." + std::to_string(i), *arr->get(i), item);
      v.push_back(std::move(item));
    }
  }
  void read_value(const std::string& path, const toml::node& node, bool& v) const {
    const auto* x = node.as_boolean();
    if (!x) throw type_error(path, node, "a boolean");
    v = x->get();
  }

  const toml::table& in_;
  std::string prefix_;  // "recipe." etc.; "" at the root
  ReadContext& ctx_;
};

// ---- writing ----------------------------------------------------------------------------------

// Shortest text that parses back to exactly `v` (std::to_chars guarantees the round trip), made
// a TOML float: "1" would read back as an integer, so it becomes "1.0".
std::string float_text(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, result.ptr);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

// A TOML basic string: quotes, backslashes and control characters escaped; UTF-8 kept as is.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char esc[8];
          std::snprintf(esc, sizeof esc, "\\u%04X", c);
          out += esc;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string value_text(std::int64_t v) { return std::to_string(v); }
std::string value_text(double v) { return float_text(v); }
std::string value_text(const std::string& v) { return quoted(v); }
std::string value_text(bool v) { return v ? "true" : "false"; }
template <class T>
std::string value_text(const std::vector<T>& v) {
  std::vector<std::string> items;
  for (const T& item : v) items.push_back(value_text(item));
  return "[" + join(items, ", ") + "]";
}
template <class E, class = std::enable_if_t<is_choice_v<E>>>
std::string value_text(E v) {
  return quoted(choice_name(v));
}

// A bound as the user would write it: integral bounds without a fraction ("[1, 100000000]").
std::string bound_text(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) <= kMaxInt)
    return std::to_string(static_cast<std::int64_t>(v));
  return float_text(v);
}

// What the comment above a key adds to its doc: the allowed choices or range.
std::string constraint_text(const std::string&, const FieldMeta& meta) {
  return meta.choices.empty() ? std::string() : "; one of: " + join(meta.choices, ", ");
}
std::string constraint_text(bool, const FieldMeta&) { return ""; }
template <class T>
std::string constraint_text(T, const FieldMeta& meta) {
  if constexpr (is_choice_v<T>) return "; one of: " + join(choice_names<T>(), ", ");
  if (!std::isfinite(meta.lo) && !std::isfinite(meta.hi)) return "";
  return "; range [" + bound_text(meta.lo) + ", " + bound_text(meta.hi) + "]";
}
template <class T>
std::string constraint_text(const std::vector<T>&, const FieldMeta& meta) {
  return constraint_text(T{}, meta);
}

void append_comment(std::string& out, const std::string& text) {
  if (text.empty()) return;
  for (const auto& line : split(text, '\n')) out += "# " + line + "\n";
}

// Renders one table. Plain keys go to body_ and sub-tables to sections_, emitted after the body:
// in TOML every key after a [header] belongs to that header, whatever order describe() uses.
class TomlWriter {
 public:
  template <class S>
  static std::string render(S& s, const std::string& toml_path) {
    TomlWriter w(toml_path);
    describe(w, s);
    return w.body_ + w.sections_;
  }

  template <class T>
  void field(const char* key, T& value, const FieldMeta& meta) {
    append_comment(body_, std::string(meta.doc) + constraint_text(value, meta));
    body_ += std::string(key) + " = " + value_text(value) + "\n";
  }

  template <class S>
  void optional_table(const char* key, S& sub, const char* doc) {
    S defaults{};
    if (TomlWriter::render(sub, "") != TomlWriter::render(defaults, "")) table(key, sub, doc);
  }
  template <class S>
  void table(const char* key, S& sub, const char* doc) {
    const std::string path = child_path(key);
    sections_ += "\n";
    append_comment(sections_, doc);
    sections_ += "[" + path + "]\n" + render(sub, path);
  }

  void overrides(nlohmann::json& patch, const char* doc) {
    for (const std::string& table : stage_override_tables())
      if (patch.contains(table)) write_json_table(child_path(table.c_str()), patch[table], doc);
  }

  template <class S>
  void array(const char* key, std::vector<S>& items, const char* doc) {
    if (items.empty()) {
      // [[key]] cannot express "no elements"; an empty inline array can, and reads back as such.
      append_comment(body_, doc);
      body_ += std::string(key) + " = []\n";
      return;
    }
    const std::string path = child_path(key);
    for (auto& item : items) {
      sections_ += "\n";
      append_comment(sections_, doc);
      sections_ += "[[" + path + "]]\n" + render(item, path);
    }
  }

 private:
  explicit TomlWriter(std::string toml_path) : path_(std::move(toml_path)) {}

  // A JSON object as a TOML table: scalars under [path], objects as [path.key] after them.
  void write_json_table(const std::string& path, const nlohmann::json& table, const char* doc) {
    sections_ += "\n";
    append_comment(sections_, doc);
    sections_ += "[" + path + "]\n";
    for (const auto& [key, value] : table.items()) {
      if (value.is_object()) continue;
      if (value.is_string()) sections_ += key + " = " + quoted(value.get<std::string>()) + "\n";
      else if (value.is_boolean()) sections_ += key + " = " + value_text(value.get<bool>()) + "\n";
      else if (value.is_number_integer()) sections_ += key + " = " + value_text(value.get<std::int64_t>()) + "\n";
      else sections_ += key + " = " + float_text(value.get<double>()) + "\n";
    }
    for (const auto& [key, value] : table.items())
      if (value.is_object()) write_json_table(path + "." + key, value, "");
  }
  std::string child_path(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

  std::string path_;  // dotted TOML table name ("recipe.diffusion"), "" at the root
  std::string body_, sections_;
};

}  // namespace

toml::table parse_toml_text(const std::string& text, const std::string& source_name) {
  try {
    return toml::parse(std::string_view(text), std::string_view(source_name));
  } catch (const toml::parse_error& e) {
    throw ReadContext(source_name).error("", std::string(e.description()), e.source().begin);
  }
}

std::string read_experiment_text(const std::string& path) {
  // Read the file ourselves (rather than toml::parse_file) so that a missing or unreadable file
  // is a SpecError naming it, like every other problem with the experiment file.
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw SpecError("", "cannot open experiment file '" + path + "': " + std::strerror(errno), path + ":1:1");
  std::string text;
  char buf[65536];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f);
  const int err = errno;  // e.g. EISDIR: fopen succeeds on a directory, reading fails
  std::fclose(f);
  if (failed) throw SpecError("", "cannot read experiment file '" + path + "': " + std::strerror(err), path + ":1:1");
  return text;
}

ExperimentSpec parse_experiment_string(const std::string& text, const std::string& source_name) {
  return parse_experiment_table(parse_toml_text(text, source_name), source_name);
}

ExperimentSpec parse_experiment_table(const toml::table& root, const std::string& source_name) {
  ReadContext ctx(source_name);
  if (const toml::node* sweep = root.get("sweep"))
    throw ctx.error("sweep",
                    "this file is a sweep: `ldm-coord submit` and `run` expand it into experiments, and "
                    "`ldm-coord show` lists its cells",
                    sweep->source().begin);
  ExperimentSpec spec;
  // Start from the family's own recipe defaults; the file's keys override them.
  if (auto family = root["recipe"]["family"].value<std::string>())
    spec.recipe = recipe_defaults(*family, root["recipe"]["optimizer"]["name"].value_or(std::string()));
  TomlReader::read_table(root, "", spec, ctx);
  try {
    const toml::array* stages = root["stage"].as_array();
    apply_stage_defaults(spec, [&](std::size_t i, const std::string& key) {
      const toml::table* t = stages && i < stages->size() ? stages->get(i)->as_table() : nullptr;
      return t && t->contains(key);
    });
    normalise_stage_overrides(spec);
    validate(spec);
  } catch (const SpecError& e) {
    throw SpecError(e.key_path(), e.detail(), ctx.nearest_location(e.key_path()));
  }
  return spec;
}

ExperimentSpec parse_experiment_file(const std::string& path) {
  return parse_experiment_string(read_experiment_text(path), path);
}

std::string format_experiment_toml(const ExperimentSpec& spec) {
  ExperimentSpec copy = spec;  // describe() takes non-const references
  return "# Experiment '" + spec.name + "': the fully resolved specification, every key included (defaults too).\n\n" +
         TomlWriter::render(copy, "");
}

}  // namespace ldm
