#include "shared/core/spec_json.h"

#include <set>

#include "shared/core/error.h"
#include "shared/core/text.h"

namespace ldm {
namespace {

using nlohmann::json;

struct JsonWriter {
  json* out;
  template <class T>
  void field(const char* key, T& value, const FieldMeta&) {
    if constexpr (is_choice_v<T>) (*out)[key] = choice_name(value);
    else (*out)[key] = value;
  }
  template <class S>
  void table(const char* key, S& sub, const char*) {
    json child = json::object();
    JsonWriter w{&child};
    describe(w, sub);
    (*out)[key] = std::move(child);
  }
  template <class S>
  void array(const char* key, std::vector<S>& items, const char*) {
    json arr = json::array();
    for (auto& item : items) {
      json child = json::object();
      JsonWriter w{&child};
      describe(w, item);
      arr.push_back(std::move(child));
    }
    (*out)[key] = std::move(arr);
  }
};

struct JsonReader {
  const json* in;
  std::string prefix;  // "recipe." etc.
  std::vector<std::string> known;

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
  void read(const std::string& p, const json& j, bool& v) {
    if (!j.is_boolean()) throw SpecError(p, "expected a boolean, got " + std::string(j.type_name()));
    v = j.get<bool>();
  }

  template <class T>
  void field(const char* key, T& value, const FieldMeta& meta) {
    known.push_back(key);
    auto it = in->find(key);
    if (it == in->end()) return;
    read(path(key), *it, value);
    check_field(path(key), value, meta);
  }
  template <class S>
  void table(const char* key, S& sub, const char*) {
    known.push_back(key);
    auto it = in->find(key);
    if (it == in->end()) return;
    read_table(*it, path(key), sub);
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
      read_table((*it)[i], path(key) + "." + std::to_string(i), item);
      items.push_back(std::move(item));
    }
  }

  template <class S>
  static void read_table(const json& j, const std::string& p, S& sub) {
    if (!j.is_object()) throw SpecError(p, "expected a table");
    JsonReader r{&j, p.empty() ? "" : p + ".", {}};
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

json spec_to_json(const ExperimentSpec& spec) {
  json out = json::object();
  JsonWriter w{&out};
  describe(w, const_cast<ExperimentSpec&>(spec));
  return out;
}

namespace {
std::string optimizer_name(const nlohmann::json& recipe) {
  if (recipe.contains("optimizer") && recipe["optimizer"].is_object() && recipe["optimizer"].contains("name") &&
      recipe["optimizer"]["name"].is_string())
    return recipe["optimizer"]["name"].get<std::string>();
  return "";
}
}  // namespace

ExperimentSpec spec_from_json(const json& j) {
  ExperimentSpec spec;
  // Start from the family's own recipe defaults; the document's keys override them.
  if (j.is_object() && j.contains("recipe") && j["recipe"].is_object() && j["recipe"].contains("family") &&
      j["recipe"]["family"].is_string())
    spec.recipe = recipe_defaults(j["recipe"]["family"].get<std::string>(), optimizer_name(j["recipe"]));
  JsonReader::read_table(j, "", spec);
  validate(spec);
  return spec;
}

}  // namespace ldm
